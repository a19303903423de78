// Package promtest reads metric values out of a Prometheus registry in
// tests, by name: the metrics a package registers are unexported, and a
// test checks what an operator would scrape.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value returns the value of the first series named name, a counter or a
// gauge; a missing metric fails the test.
func Value(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	for _, m := range series(t, g, name) {
		return value(m)
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Labeled returns the value of the series named name whose label key is
// value (one replica's, say); a missing series fails the test.
func Labeled(t testing.TB, g prometheus.Gatherer, name, key, val string) float64 {
	t.Helper()
	for _, m := range series(t, g, name) {
		for _, l := range m.GetLabel() {
			if l.GetName() == key && l.GetValue() == val {
				return value(m)
			}
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, key, val)
	return 0
}

func series(t testing.TB, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}
