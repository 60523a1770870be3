package pebblekv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger routes Pebble's printf-style messages to slog: routine
// information at debug, errors at error.
type pebbleLogger struct {
	log *slog.Logger
}

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble when it cannot go on safely (a failed WAL
// write, corruption). Pebble does not expect it to return, and a panic could
// be recovered by a server loop and leave the database in use in that state,
// so the process exits, as Pebble's own default logger does, after logging
// the message with the stack.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true, "stack", string(debug.Stack()))
	os.Exit(1)
}

// eventListener logs every Pebble event at debug, and the ones an operator
// must see (background errors, corruption, slow disk, write stalls, low
// disk space) at warn or error.
func eventListener(log *slog.Logger) pebble.EventListener {
	el := pebble.MakeLoggingEventListener(pebbleLogger{log: log})
	attrs := []any{"component", "pebble"}
	el.BackgroundError = func(err error) {
		log.Error("pebble background error", append(attrs, "err", err)...)
	}
	el.DataCorruption = func(info pebble.DataCorruptionInfo) {
		log.Error("pebble data corruption", append(attrs, "info", info.String())...)
	}
	el.DiskSlow = func(info pebble.DiskSlowInfo) {
		log.Warn("pebble disk slow", append(attrs, "info", info.String())...)
	}
	el.WriteStallBegin = func(info pebble.WriteStallBeginInfo) {
		log.Warn("pebble write stall began", append(attrs, "reason", info.Reason)...)
	}
	el.WriteStallEnd = func() {
		log.Info("pebble write stall ended", attrs...)
	}
	el.LowDiskSpace = func(info pebble.LowDiskSpaceInfo) {
		log.Warn("pebble low disk space", append(attrs, "info", info.String())...)
	}
	return el
}
