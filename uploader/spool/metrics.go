package spool

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ShipperMetrics are the Prometheus collectors of one Shipper. They live
// on a Registerer the caller injects (no package-global metrics), so tests
// and several tailers in one process do not collide.
type ShipperMetrics struct {
	// UploadedObjects counts objects the replica confirmed
	// (tailer_upload_objects_total): its rate is the shipping rate.
	UploadedObjects prometheus.Counter
	// UploadedBytes counts their bytes (tailer_upload_bytes_total).
	UploadedBytes prometheus.Counter
	// UploadErrors counts failed upload attempts, each retry included
	// (tailer_upload_errors_total): alert when it grows and objects don't.
	UploadErrors prometheus.Counter
	// SpoolBytes is the size of everything committed but not yet
	// confirmed (tailer_spool_bytes): data at risk if this disk dies,
	// and how far behind the replica is. Read from the spool at scrape
	// time, so it is right even before the Shipper starts.
	SpoolBytes prometheus.GaugeFunc
	// UploadLag is the age of the oldest object waiting in the spool
	// (tailer_upload_lag_seconds, 0 when empty): how long the newest
	// restorable point in the replica trails what tailer has sealed.
	UploadLag prometheus.GaugeFunc
}

// NewShipperMetrics creates the collectors and registers them on reg (if
// not nil). Registering twice on one Registerer panics, as with
// prometheus.MustRegister; wrap reg with prometheus.WrapRegistererWith to
// run several shippers.
func NewShipperMetrics(reg prometheus.Registerer, s *Spool) *ShipperMetrics {
	m := &ShipperMetrics{
		UploadedObjects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tailer_upload_objects_total",
			Help: "Objects uploaded to the replica and removed from the spool.",
		}),
		UploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tailer_upload_bytes_total",
			Help: "Bytes of objects uploaded to the replica.",
		}),
		UploadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tailer_upload_errors_total",
			Help: "Failed upload attempts (every retry counts).",
		}),
		SpoolBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailer_spool_bytes",
			Help: "Bytes committed to the local spool and not yet confirmed by the replica.",
		}, func() float64 {
			n, err := s.Bytes()
			if err != nil {
				return -1 // visible in dashboards; the Shipper logs the cause
			}
			return float64(n)
		}),
		UploadLag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tailer_upload_lag_seconds",
			Help: "Age of the oldest object waiting in the spool for the replica (0 when the spool is empty).",
		}, func() float64 {
			age, err := s.OldestAge()
			if err != nil {
				return -1
			}
			return age.Seconds()
		}),
	}
	if reg != nil {
		reg.MustRegister(m.UploadedObjects, m.UploadedBytes, m.UploadErrors, m.SpoolBytes, m.UploadLag)
	}
	return m
}
