package main

import (
	"context"
	"fmt"
)

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "migrate", "migrate [--database-url URL]", "DATABASE_URL=postgres://... creditrecon migrate")
	s := &settings{fs: fs}
	var c common
	c.register(s)
	err := s.parseNone("migrate", args)
	if err != nil {
		return err
	}
	if _, err := c.validate(); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "migrations applied: job-owned tables are up to date")
	return nil
}
