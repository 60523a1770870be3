package metrics

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// DefaultCPUSampleInterval is used when StartCPUSampler is given a
// non-positive interval. It is shorter than usual scrape intervals so that a
// scrape sees a recent value, and long enough that sampling costs nothing.
const DefaultCPUSampleInterval = 5 * time.Second

// cpuSampler turns the process's cumulative CPU time into a usage percentage
// over the time between two samples.
type cpuSampler struct {
	prevCPU  time.Duration
	prevWall time.Time
}

func newCPUSampler(now time.Time) (*cpuSampler, error) {
	cpu, err := processCPUTime()
	if err != nil {
		return nil, err
	}
	return &cpuSampler{prevCPU: cpu, prevWall: now}, nil
}

// sample returns the CPU use since the previous sample in percent of
// GOMAXPROCS cores. GOMAXPROCS is the capacity because, since Go 1.25, it
// follows the container's CPU quota as well as the affinity mask: on a
// 64-core host with a 2-CPU limit, 100 means the limit is reached. The value
// can exceed 100 only if GOMAXPROCS was lowered by hand below the CPUs the
// threads actually run on. It is read on each sample because the runtime
// may change it.
func (s *cpuSampler) sample(now time.Time) (float64, error) {
	cpu, err := processCPUTime()
	if err != nil {
		return 0, err
	}
	wall := now.Sub(s.prevWall)
	used := cpu - s.prevCPU
	s.prevCPU, s.prevWall = cpu, now
	if wall <= 0 || used < 0 {
		return 0, nil
	}
	procs := runtime.GOMAXPROCS(0)
	return 100 * used.Seconds() / (wall.Seconds() * float64(procs)), nil
}

// StartCPUSampler updates gateway_cpu_usage_percent every interval until ctx
// is done, and closes the returned channel once it has stopped. The first
// value appears one interval after the start. On a platform without process
// CPU accounting it logs a warning and stops, leaving the gauge at 0.
func (m *Metrics) StartCPUSampler(ctx context.Context, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if m == nil {
		close(done)
		return done
	}
	if interval <= 0 {
		interval = DefaultCPUSampleInterval
	}
	go func() {
		defer close(done)
		s, err := newCPUSampler(time.Now())
		if err != nil {
			slog.Warn("metrics: CPU usage sampler disabled; gateway_cpu_usage_percent stays 0", "err", err)
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				pct, err := s.sample(now)
				if err != nil {
					slog.Warn("metrics: reading process CPU time failed; CPU usage sampler stopped", "err", err)
					return
				}
				m.CPUUsagePercent.Set(pct)
			}
		}
	}()
	return done
}
