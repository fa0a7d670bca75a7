package main

import (
	"context"

	"github.com/runpod/creditrecon/jobs"
)

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "serve", `serve --schedule "CRON" [flags]`, `creditrecon serve --schedule "30 0 * * *"`)
	s := &settings{fs: fs}
	var rs runnerSettings
	rs.register(s)
	schedule := "30 0 * * *"
	s.String(&schedule, "schedule", "CREDITRECON_SCHEDULE", "when to run the nightly job: cron expression (5 fields) or @daily, @every 6h")
	err := s.parseNone("serve", args)
	if err != nil {
		return err
	}
	if err := rs.validate(); err != nil {
		return err
	}
	if _, err := jobs.ParseSchedule(schedule); err != nil {
		return usageErrorf("schedule: %v", err)
	}
	log := newLogger(e.stderr, rs.logFormat)
	r, closeRunner, err := rs.runner(ctx, e, log)
	if err != nil {
		return err
	}
	defer closeRunner()
	return r.Serve(ctx, schedule)
}
