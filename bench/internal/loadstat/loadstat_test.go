package loadstat

import (
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []time.Duration
		qs   []float64
		want []time.Duration
	}{
		{"ten", []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}, []float64{0.5, 0.9, 0.99, 1}, []time.Duration{5, 9, 10, 10}},
		{"one", []time.Duration{7}, []float64{0.5, 0.99}, []time.Duration{7, 7}},
		{"none", nil, []float64{0.5}, []time.Duration{0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Percentiles(tt.in, tt.qs...)
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Errorf("quantile %v = %d, want %d", tt.qs[i], got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true}, {"4k", 4096, true}, {"64M", 64 << 20, true}, {"1g", 1 << 30, true}, {"2G", 2 << 30, true},
		{"", 0, false}, {"k", 0, false}, {"x", 0, false}, {"-1", 0, false}, {"1t", 0, false}, {"2000g", 0, false},
	} {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
