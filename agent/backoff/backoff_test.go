package backoff

import (
	"testing"
	"time"
)

func TestNextStaysWithinGrowingCeiling(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 3 * time.Second}
	want := []time.Duration{100, 200, 400, 800, 1600, 3000, 3000, 3000}
	for i, w := range want {
		w *= time.Millisecond
		if got := b.Ceiling(); got != w {
			t.Fatalf("attempt %d: ceiling %v, want %v", i, got, w)
		}
		for range 200 { // the jitter stays in [0, ceiling]
			c := b
			if d := c.Next(); d < 0 || d > w {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", i, d, w)
			}
		}
		b.Next()
	}
}

func TestJitterIsFull(t *testing.T) {
	give := []struct {
		name string
		rand func(int64) int64
		want time.Duration
	}{
		{"lowest", func(int64) int64 { return 0 }, 0},
		{"highest", func(n int64) int64 { return n - 1 }, 400 * time.Millisecond},
		{"middle", func(n int64) int64 { return n / 2 }, 200 * time.Millisecond},
	}
	for _, tt := range give {
		t.Run(tt.name, func(t *testing.T) {
			b := Backoff{Base: 100 * time.Millisecond, Rand: tt.rand}
			b.Next()
			b.Next()
			if got := b.Next(); got != tt.want {
				t.Fatalf("third delay %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJitterSpreads(t *testing.T) {
	var b Backoff
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		c := b
		d := c.Next()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 100*time.Millisecond || hi < 900*time.Millisecond {
		t.Fatalf("1000 first delays span only [%v, %v] of [0, 1s]", lo, hi)
	}
}

func TestDefaultsAndReset(t *testing.T) {
	var b Backoff
	if got := b.Ceiling(); got != DefaultBase {
		t.Fatalf("first ceiling %v, want %v", got, DefaultBase)
	}
	for range 20 {
		if d := b.Next(); d > DefaultMax {
			t.Fatalf("delay %v over the cap %v", d, DefaultMax)
		}
	}
	if got := b.Ceiling(); got != DefaultMax {
		t.Fatalf("ceiling after 20 attempts %v, want the cap %v", got, DefaultMax)
	}
	b.Reset()
	if b.Attempt() != 0 || b.Ceiling() != DefaultBase {
		t.Fatalf("after Reset: attempt %d ceiling %v", b.Attempt(), b.Ceiling())
	}
}
