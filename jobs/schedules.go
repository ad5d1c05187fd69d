package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"github.com/hubexport/hubexport/internal/export"
)

// QueueSchedules carries schedule ticks and checks. Only the scheduler
// role serves it, so a worker busy with long exports never delays a tick
// past its slot.
const QueueSchedules = "schedules"

// cronParser is the dialect Asynq's scheduler reads: 5 fields or a
// descriptor, with an optional CRON_TZ= prefix.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron implements export.CronParser with the parser Asynq's scheduler
// uses, so a spec the API accepts is one the scheduler can register.
func ParseCron(spec string, loc *time.Location) (export.CronSchedule, error) {
	s, err := cronParser.Parse("CRON_TZ=" + loc.String() + " " + spec)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "CRON_TZ="+loc.String()+" "))
	}
	return s, nil
}

// Cronspec is what the periodic task manager registers for sch. "@every"
// specs run from the scheduler's start, not on the epoch-aligned slots:
// the tick handler maps each tick to its slot.
func Cronspec(sch *export.Schedule) string {
	if strings.HasPrefix(sch.Cron, "@every") {
		return sch.Cron
	}
	return "CRON_TZ=" + sch.Timezone + " " + sch.Cron
}

// ScheduleLister lists schedules (internal/store).
type ScheduleLister interface {
	AllSchedules(ctx context.Context, enabledOnly bool) ([]*export.Schedule, error)
}

// ScheduleProvider is the PeriodicTaskConfigProvider over the schedules
// table: one tick entry per enabled schedule, and the periodic check. Each
// call also queues the tick of a slot missed while every scheduler was down
// (the latest one only).
type ScheduleProvider struct {
	Schedules *export.Schedules
	Store     ScheduleLister
	Client    *asynq.Client
	// CheckEvery is how often retention and freshness are checked.
	CheckEvery time.Duration
	// Ctx bounds the provider's queries (GetConfigs takes no context).
	Ctx context.Context
	Log *slog.Logger
}

var _ asynq.PeriodicTaskConfigProvider = (*ScheduleProvider)(nil)

// GetConfigs implements asynq.PeriodicTaskConfigProvider.
func (p *ScheduleProvider) GetConfigs() ([]*asynq.PeriodicTaskConfig, error) {
	ctx, cancel := context.WithTimeout(p.Ctx, 30*time.Second)
	defer cancel()
	list, err := p.Store.AllSchedules(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("jobs: list schedules: %w", err)
	}
	configs := []*asynq.PeriodicTaskConfig{{
		Cronspec: "@every " + p.CheckEvery.String(),
		Task:     NewScheduleCheckTask(""),
	}}
	now := p.Schedules.Now()
	for _, sch := range list {
		t, err := p.Schedules.Timing(sch)
		if err != nil {
			// Only a changed configuration (SCHEDULE_ALLOW_EVERY turned
			// off) makes a stored spec invalid.
			p.Log.WarnContext(ctx, "schedule_invalid", "schedule_id", sch.ID, "cron", sch.Cron, "error", err)
			continue
		}
		var interval time.Duration
		if slot, ok := t.Latest(now); ok {
			interval = t.Interval(slot)
		} else {
			n := t.Next(now)
			interval = t.Interval(n)
		}
		configs = append(configs, &asynq.PeriodicTaskConfig{
			Cronspec: Cronspec(sch),
			Task:     NewScheduleTickTask(sch.ID, nil),
			Opts:     tickOptions(interval),
		})
		if slot, ok := p.Schedules.MissedSlot(sch, now); ok {
			p.catchUp(ctx, sch, slot)
		}
	}
	return configs, nil
}

// tickOptions are a periodic tick's options. Options are fixed when an
// entry is registered, so a tick cannot carry a per-slot TaskID (a fixed
// one would block later slots while it is retained, asynq#1055): Unique,
// held for less than the interval, drops most duplicate ticks from other
// scheduler processes; the slot's derived job id makes the rest harmless.
func tickOptions(interval time.Duration) []asynq.Option {
	ttl := min(max(interval/2, time.Second), 10*time.Minute)
	return []asynq.Option{asynq.Unique(ttl)}
}

// catchUp queues the tick of sch's missed slot. Its TaskID is derived from
// the slot, so scheduler processes coming back together queue it once.
func (p *ScheduleProvider) catchUp(ctx context.Context, sch *export.Schedule, slot time.Time) {
	_, err := p.Client.EnqueueContext(ctx, NewScheduleTickTask(sch.ID, &slot))
	switch {
	case err == nil:
		p.Log.InfoContext(ctx, "schedule_catch_up", "schedule_id", sch.ID, "slot", slot)
	case errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask):
	default:
		p.Log.WarnContext(ctx, "schedule_catch_up_failed", "schedule_id", sch.ID, "slot", slot, "error", err)
	}
}

// NewScheduleManager builds the periodic task manager of the scheduler
// role. Every scheduler process runs one; the ticks they all enqueue make
// one job per slot.
func NewScheduleManager(rdb redis.UniversalClient, p *ScheduleProvider, syncInterval time.Duration, log *slog.Logger) (*asynq.PeriodicTaskManager, error) {
	conn, err := schedulerRedis(rdb)
	if err != nil {
		return nil, err
	}
	return asynq.NewPeriodicTaskManager(asynq.PeriodicTaskManagerOpts{
		PeriodicTaskConfigProvider: p,
		RedisConnOpt:               conn,
		SyncInterval:               syncInterval,
		SchedulerOpts: &asynq.SchedulerOpts{
			Location: time.UTC,
			// Entries (asynq cron ls, Inspector.SchedulerEntries) are
			// refreshed as often as they can change.
			HeartbeatInterval: min(syncInterval, 10*time.Second),
			Logger:            asynqLogger{log},
			LogLevel:          asynq.WarnLevel,
			//lint:ignore SA1019 PostEnqueueFunc is given no task when enqueueing fails; this names its type in the log.
			EnqueueErrorHandler: func(t *asynq.Task, _ []asynq.Option, err error) {
				if errors.Is(err, asynq.ErrDuplicateTask) || errors.Is(err, asynq.ErrTaskIDConflict) {
					return // another scheduler process got there first
				}
				log.Warn("periodic_enqueue_failed", "task_type", t.Type(), "error", err)
			},
		},
	})
}

// ScheduleHandlers serve the schedules queue.
type ScheduleHandlers struct {
	Tick  *ScheduleTickHandler
	Check *ScheduleCheckHandler
}

// NewScheduleServer builds the Asynq server of the scheduler role: it
// serves the schedules queue only, polling often so a tick is handled well
// within its slot.
func NewScheduleServer(rdb redis.UniversalClient, h ScheduleHandlers, log *slog.Logger) (*asynq.Server, *asynq.ServeMux) {
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       4,
		Queues:            map[string]int{QueueSchedules: 1},
		TaskCheckInterval: 200 * time.Millisecond,
		ShutdownTimeout:   10 * time.Second,
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			return min(time.Duration(n+1)*time.Second, 30*time.Second)
		},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			log.WarnContext(ctx, "task_failed", "task_type", t.Type(), "error", err)
		}),
		Logger:   asynqLogger{log},
		LogLevel: asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(TypeScheduleTick, h.Tick)
	mux.Handle(TypeScheduleCheck, h.Check)
	return srv, mux
}
