// Command bench runs berth side by side with its peers — podman (with
// runc), dockerd, bare runc and crun — on the same machine in one run, and
// reports who is faster and by how much.
//
//	make bench                 # every scenario, full rounds (as root)
//	cd bench && go run . -quick  # one round each, no warm-up (CI)
//
// Each scenario prepares berth and every peer that can run here (a peer
// that cannot is skipped with the reason printed), does one warm-up
// measurement of each, then alternates them for -rounds rounds, reversing
// the order every other round (ABBA), so that drift in the machine's load
// hits all alike. It prints min/median/max of each and the ratio of
// berth's median to each peer's, checks the ratios against berth's
// targets, and writes report.md and report.png (the medians as bars) into
// -out.
//
// The harness re-executes itself in a network namespace of its own, so
// that every bridge, veth and nftables/iptables rule the engines make
// goes with it; each peer gets a scratch root of its own, and what a peer
// writes outside it is removed when the run ends (internal/testutil).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// options are the command line's.
type options struct {
	rounds  int
	quick   bool
	only    *regexp.Regexp
	out     string
	work    string
	berth   string // a prebuilt berth CLI; "" builds ./examples/berth
	install bool
	keep    bool
}

func main() {
	var o options
	var only string
	flag.IntVar(&o.rounds, "rounds", 11, "measured rounds per scenario (after one warm-up)")
	flag.BoolVar(&o.quick, "quick", false, "one round per scenario and no warm-up (CI keeps the harness working with it)")
	flag.StringVar(&only, "only", "", "run only the scenarios whose name matches this regular expression")
	flag.StringVar(&o.out, "out", "", "directory for report.md and report.png (default: the current directory)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new one under $TMPDIR, removed at the end)")
	flag.StringVar(&o.berth, "berth", "", "berth CLI binary to measure (default: build ./examples/berth)")
	flag.BoolVar(&o.install, "install", true, "install missing peers with apt-get")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-16s %s\n", s.name, s.title)
		}
		return
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fatalf("-only: %v", err)
		}
		o.only = re
	}
	if o.quick {
		o.rounds = 1
	}
	if o.rounds < 1 {
		fatalf("-rounds must be at least 1")
	}
	if os.Geteuid() != 0 {
		fatalf("bench needs root (it runs containers with every engine)")
	}
	if o.out == "" {
		o.out, _ = os.Getwd()
	}
	o.out, _ = filepath.Abs(o.out)
	if !inOwnNetns() {
		os.Exit(reexecInNetns())
	}
	if err := setupNetns(); err != nil {
		fatalf("network namespace: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, o))
}

func run(ctx context.Context, o options) int {
	start := time.Now()
	h, err := newHarness(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer h.close()
	var results []*result
	for _, s := range scenarios {
		if o.only != nil && !o.only.MatchString(s.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		results = append(results, h.runScenario(s))
	}
	// The profiles of the targets berth misses, measured by hand
	// (perf, strace), go into the report with the numbers.
	notes, _ := os.ReadFile(filepath.Join(h.repo, "bench", "profiles.md"))
	rep := newReport(results, h.info(), time.Since(start), string(notes))
	fmt.Println()
	fmt.Print(rep.text())
	if err := rep.write(o.out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("\nreport: %s, %s\n", filepath.Join(o.out, "report.md"), filepath.Join(o.out, "report.png"))
	if ctx.Err() != nil {
		return 1
	}
	for _, r := range results {
		if r.failed() {
			return 1
		}
	}
	return 0
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(2)
}
