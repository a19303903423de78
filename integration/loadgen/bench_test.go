package loadgen

import (
	"context"
	"testing"
)

// BenchmarkTx measures one transaction with the default Config, flushes
// and WAL deletion included: the generator must outpace what it tests.
func BenchmarkTx(b *testing.B) {
	g, err := Open(Config{Dir: b.TempDir() + "/primary", Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Tx(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
