//go:build !unix

package metrics

import (
	"errors"
	"time"
)

func processCPUTime() (time.Duration, error) {
	return 0, errors.New("process CPU time is not available on this platform")
}
