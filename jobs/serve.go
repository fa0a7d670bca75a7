package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// Nightly is the nightly cutoff at now: 00:00 of today in loc.
func Nightly(now time.Time, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// ParseSchedule parses a standard five-field cron expression or a descriptor such as @daily or
// @every 1h.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s, nil
}

// Serve runs the nightly job (a Run as of Nightly(now)) on schedule, in the configured zone, until
// ctx is cancelled. A tick that comes while the previous run is still going is skipped, and a
// panic in a run is logged, not fatal. On cancel it waits for a running job, which stops at a
// safe point (its grants are atomic), and returns.
func (r *Runner) Serve(ctx context.Context, spec string) error {
	schedule, err := ParseSchedule(spec)
	if err != nil {
		return err
	}
	logger := cron.PrintfLogger(slog.NewLogLogger(r.Log.Handler(), slog.LevelInfo))
	c := cron.New(cron.WithLocation(r.Config.Location), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	c.Schedule(schedule, cron.FuncJob(func() {
		asOf := Nightly(r.Now(), r.Config.Location)
		if _, err := r.Run(ctx, RunOptions{AsOf: asOf}); err != nil {
			r.Log.Error("scheduled run failed", "as_of", asOf, "error", err.Error())
		}
	}))
	r.Log.Info("scheduler started", "schedule", spec, "timezone", r.Config.Location.String(),
		"next", schedule.Next(r.Now().In(r.Config.Location)))
	c.Start()
	<-ctx.Done()
	r.Log.Info("scheduler stopping: waiting for a running job to reach a safe point")
	<-c.Stop().Done()
	r.Log.Info("scheduler stopped")
	return nil
}
