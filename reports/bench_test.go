package reports

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// referrerSource generates n referrer rows on the fly; the other reports are empty.
type referrerSource struct{ n int }

func referrerRow(i int) ReferrerRow {
	granted := decimal.New(int64(i%5000), -2)
	return ReferrerRow{
		ReferrerID:       fmt.Sprintf("user-%08d", i),
		Referrals:        int64(i % 97),
		ReferralSpendUSD: decimal.New(int64(i)*7919%10_000_000, -4),
		EarnedUSD:        decimal.New(int64(i)*7919%10_000_000*2, -6),
		TargetUSD:        granted,
		GrantedUSD:       granted,
		ClawbackDueUSD:   decimal.Zero,
		Accepted:         i%3 == 0,
		Status:           "granted",
	}
}

func (s referrerSource) Referrers(_ context.Context, fn func(ReferrerRow) error) error {
	for i := range s.n {
		if err := fn(referrerRow(i)); err != nil {
			return err
		}
	}
	return nil
}
func (referrerSource) Grants(context.Context, func(GrantRow) error) error       { return nil }
func (referrerSource) Templates(context.Context, func(TemplateRow) error) error { return nil }
func (referrerSource) Anomalies(context.Context, func(AnomalyRow) error) error  { return nil }
func (referrerSource) SignupBonuses(context.Context, func(SignupBonusRow) error) error {
	return nil
}
func (referrerSource) Payouts(context.Context, func(PayoutRow) error) error { return nil }
func (referrerSource) ServerlessReferrals(context.Context, func(ServerlessRow) error) error {
	return nil
}

func referrerInfo(n int) ManifestInfo {
	var granted decimal.Decimal
	for i := range n {
		granted = granted.Add(referrerRow(i).GrantedUSD)
	}
	return ManifestInfo{
		BusinessDate:  "2026-02-04",
		ControlTotals: map[string]ProgramTotals{"referral": {GrantedToDateUSD: granted}},
	}
}

// discardSink accepts every object and keeps none.
type discardSink struct{}

type discardObject struct{ io.Writer }

func (discardObject) Commit() error { return nil }
func (discardObject) Abort() error  { return nil }

func (discardSink) Create(context.Context, string) (Object, error) {
	return discardObject{io.Discard}, nil
}
func (discardSink) Open(context.Context, string) (io.ReadCloser, error) { return nil, fs.ErrNotExist }
func (discardSink) List(context.Context, string) ([]ObjectInfo, error)  { return nil, nil }
func (discardSink) Remove(context.Context, string) error                { return nil }
func (discardSink) Link(context.Context, string, time.Duration) (string, error) {
	return "", fs.ErrNotExist
}

// peakHeapInuse runs fn and returns the largest HeapInuse sampled while it ran.
func peakHeapInuse(fn func()) uint64 {
	runtime.GC()
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var ms runtime.MemStats
		var top uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapInuse)
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	return <-peak
}

func TestExportMillionReferrersBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("exports a million rows")
	}
	const n = 1_000_000
	src, info := referrerSource{n: n}, referrerInfo(n)
	var man Manifest
	var err error
	start := time.Now()
	peak := peakHeapInuse(func() { man, err = Export(context.Background(), discardSink{}, info, src) })
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got := man.Files[1].Rows; got != n {
		t.Fatalf("referrers.csv has %d rows, want %d", got, n)
	}
	t.Logf("%d referrer rows, %d MiB of CSV: peak HeapInuse %.1f MiB, %s (%.0f rows/s)",
		n, man.Files[1].Bytes>>20, float64(peak)/(1<<20), elapsed.Round(time.Millisecond), n/elapsed.Seconds())
	if peak > 64<<20 {
		t.Errorf("peak HeapInuse %.1f MiB, want under 64 MiB", float64(peak)/(1<<20))
	}
}

// BenchmarkExportReferrers measures export throughput, generating the rows included;
// TestExportMillionReferrersBoundedHeap measures memory.
func BenchmarkExportReferrers(b *testing.B) {
	const n = 100_000
	src, info := referrerSource{n: n}, referrerInfo(n)
	sinks := []struct {
		name string
		sink func(b *testing.B) Sink
	}{
		{"discard", func(*testing.B) Sink { return discardSink{} }},
		{"file", func(b *testing.B) Sink { return fileSinkAt(b, b.TempDir()) }},
	}
	for _, sk := range sinks {
		b.Run(sk.name, func(b *testing.B) {
			sink := sk.sink(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Export(context.Background(), sink, info, src); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
