package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/fixtures"
	"github.com/berth-run/berth/internal/testutil"
)

func TestRun(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	t.Setenv("BERTH_ROOT", filepath.Join(dir, "root"))
	t.Setenv("BERTH_RUNROOT", filepath.Join(dir, "run"))
	ctx := context.Background()
	rt, err := berth.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	fixtures.Image(t, rt, fixtures.Redis)
	ref, _ := fixtures.Ref(fixtures.Redis)
	var out bytes.Buffer
	if err := run(ctx, ref, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `greeting="hello from berth" visits=3 redis_version:7.`) {
		t.Fatalf("output:\n%s", out.String())
	}
	ctrs, err := rt.Containers(ctx)
	if err != nil || len(ctrs) != 0 {
		t.Fatalf("containers left: %d, %v", len(ctrs), err)
	}
}
