package storage

import (
	"fmt"
	"log/slog"
	"os"
)

// pebbleLogger routes pebble's log lines into slog. Pebble's informational
// chatter goes to Debug so the core is quiet by default.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf logs and exits, as pebble's default logger does: pebble calls it
// only when it cannot continue safely.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
