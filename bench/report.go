package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// target is one of berth's goals: its median at most max times the
// peer's in the scenario.
type target struct {
	scenario, peer string
	max            float64
}

// targets are berth's goals against its peers (issue 9).
var targets = []target{
	{"run-none", "runc", 1.0},
	{"run-none", "crun", 2.5},
	{"run-none", "podman", 0.10},
	{"run-bridge", "podman", 0.10},
	{"run-publish", "podman", 0.10},
	{"exec", "podman", 0.25},
	{"parallel-20", "podman", 0.10},
	{"pull-busybox", "podman", 0.35},
	{"pull-redis", "podman", 0.35},
	{"commit", "podman", 0.5},
	{"memory-50", "podman", 1.0},
}

func targetOf(scenario, peer string) (float64, bool) {
	for _, t := range targets {
		if t.scenario == scenario && t.peer == peer {
			return t.max, true
		}
	}
	return 0, false
}

// report is the run's results, as text and as Markdown with a chart.
type report struct {
	results []*result
	info    []string
	took    time.Duration
	notes   string // Markdown appended: why targets are not met (profiles.md)
}

func newReport(results []*result, info []string, took time.Duration, notes string) *report {
	return &report{results: results, info: info, took: took, notes: notes}
}

// line is one row of the table.
type line struct {
	scenario, engine, min, median, max, n, ratio, target, note string
}

func (rep *report) lines() []line {
	var out []line
	for _, res := range rep.results {
		s := res.s
		if res.err != "" {
			out = append(out, line{scenario: s.name, engine: "—", note: firstLine(res.err)})
			continue
		}
		b := res.berth()
		for i, r := range res.rows {
			l := line{engine: r.name}
			if i == 0 {
				l.scenario = s.name
			}
			if !r.ok() {
				l.note = firstLine(r.err)
				if r.skipped {
					l.note = "skipped: " + l.note
				}
				out = append(out, l)
				continue
			}
			l.min, l.median, l.max = format(r.min(), s.unit), format(r.median(), s.unit), format(r.max(), s.unit)
			l.n = fmt.Sprint(len(r.samples))
			if r != b && b != nil && b.ok() {
				ratio := b.median() / r.median()
				l.ratio = fmt.Sprintf("%.3f", ratio)
				if max, ok := targetOf(s.name, r.name); ok {
					l.target = fmt.Sprintf("≤ %.2f", max)
					if ratio <= max {
						l.target += " met"
					} else {
						l.target += " NOT met"
					}
				}
			} else if max, ok := targetOf(s.name, r.name); ok {
				l.target = fmt.Sprintf("≤ %.2f (no ratio)", max)
			}
			out = append(out, l)
		}
	}
	return out
}

var header = line{"scenario", "engine", "min", "median", "max", "n", "berth/engine", "target", ""}

// text is the table for a terminal.
func (rep *report) text() string {
	ls := append([]line{header}, rep.lines()...)
	cols := func(l line) []string {
		note := l.note
		if r := []rune(note); len(r) > 70 {
			note = string(r[:67]) + "..."
		}
		return []string{l.scenario, l.engine, l.min, l.median, l.max, l.n, l.ratio, l.target, note}
	}
	width := make([]int, 9)
	for _, l := range ls {
		for i, c := range cols(l) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, l := range ls {
		for i, c := range cols(l) {
			pad := width[i] - len([]rune(c))
			if i >= 2 && i <= 6 { // numbers: right-aligned
				b.WriteString(strings.Repeat(" ", pad) + c)
			} else {
				b.WriteString(c + strings.Repeat(" ", pad))
			}
			b.WriteString("  ")
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), " ")
}

// markdown is the report: the machine, the table, the targets and the
// scenarios' definitions.
func (rep *report) markdown() string {
	var b strings.Builder
	b.WriteString("# berth vs its peers\n\n")
	for _, i := range rep.info {
		b.WriteString("- " + i + "\n")
	}
	fmt.Fprintf(&b, "- the run took %s\n\n", rep.took.Round(time.Second))
	b.WriteString("Medians of the measured rounds after one warm-up; the engines alternate, the order reversed every other round. " +
		"berth/engine is berth's median over the engine's: below 1, berth is faster.\n\n")
	b.WriteString("| scenario | engine | min | median | max | n | berth/engine | target | note |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|---|---|\n")
	for _, l := range rep.lines() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", l.scenario, l.engine, l.min, l.median, l.max, l.n,
			l.ratio, l.target, strings.ReplaceAll(l.note, "|", "\\|"))
	}
	b.WriteString("\n![medians](report.png)\n\n## Scenarios\n\n")
	for _, res := range rep.results {
		fmt.Fprintf(&b, "- **%s**: %s\n", res.s.name, res.s.title)
	}
	if rep.notes != "" {
		b.WriteString("\n" + rep.notes)
	}
	return b.String()
}

// write writes report.md and report.png into dir.
func (rep *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.png"))
	if err != nil {
		return err
	}
	if err := drawChart(f, rep.results); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// info describes the machine and the engines' versions.
func (h *harness) info() []string {
	var uts [3]string
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		uts[0] = strings.TrimSpace(string(b))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	out := []string{
		fmt.Sprintf("%s, Linux %s, %d CPUs, load average at the end %s", time.Now().UTC().Format("2006-01-02 15:04 MST"),
			uts[0], runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " ")),
		"scratch directory " + h.work + " (" + fsType(h.work) + ")",
	}
	version := func(name string, argv ...string) {
		if b, err := exec.Command(argv[0], argv[1:]...).Output(); err == nil {
			v := strings.TrimSpace(string(b))
			if i := strings.IndexByte(v, '\n'); i > 0 {
				v = v[:i]
			}
			out = append(out, name+": "+v)
		}
	}
	if h.opts.berth == "" {
		rev, _ := exec.Command("git", "-C", h.repo, "rev-parse", "--short", "HEAD").Output()
		line := "berth: built from commit " + strings.TrimSpace(string(rev))
		if st, _ := exec.Command("git", "-C", h.repo, "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
			line += " (the working tree had uncommitted changes)"
		}
		out = append(out, line)
	} else {
		out = append(out, "berth: "+h.opts.berth)
	}
	version("podman", "podman", "--version")
	version("docker", "/usr/bin/docker", "--version")
	version("runc", "runc", "--version")
	version("crun", "crun", "--version")
	return out
}

// fsType names the file system type of path ("ext4", "tmpfs").
func fsType(path string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "?"
	}
	best, typ := "", "?"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && (path == f[1] || f[1] == "/" || strings.HasPrefix(path, f[1]+"/")) && len(f[1]) >= len(best) {
			best, typ = f[1], f[2]
		}
	}
	return typ
}
