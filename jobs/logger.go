package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// asynqLogger routes Asynq's own log lines into slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) emit(level slog.Level, args ...any) {
	l.log.Log(context.Background(), level, "asynq", "detail", fmt.Sprint(args...))
}

func (l asynqLogger) Debug(args ...any) { l.emit(slog.LevelDebug, args...) }
func (l asynqLogger) Info(args ...any)  { l.emit(slog.LevelInfo, args...) }
func (l asynqLogger) Warn(args ...any)  { l.emit(slog.LevelWarn, args...) }
func (l asynqLogger) Error(args ...any) { l.emit(slog.LevelError, args...) }
func (l asynqLogger) Fatal(args ...any) {
	l.emit(slog.LevelError, args...)
	os.Exit(1)
}
