package backbone

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// serverLog hands the embedded NATS server's log to the node's logger:
// warnings and errors (why a stream could not be created, why storage is
// refused) at their own level, notices at debug so that a normal start-up
// stays quiet. Without it the server's reasons are lost and a client only
// sees JetStream's generic API error.
type serverLog struct{ log *slog.Logger }

func (l serverLog) emit(level slog.Level, format string, v []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, v...)), "source", "nats-server")
}

func (l serverLog) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l serverLog) Warnf(format string, v ...any)   { l.emit(slog.LevelWarn, format, v) }
func (l serverLog) Fatalf(format string, v ...any)  { l.emit(slog.LevelError, format, v) }
func (l serverLog) Errorf(format string, v ...any)  { l.emit(slog.LevelError, format, v) }
func (l serverLog) Debugf(format string, v ...any)  { l.emit(slog.LevelDebug-4, format, v) }
func (l serverLog) Tracef(format string, v ...any)  { l.emit(slog.LevelDebug-8, format, v) }
