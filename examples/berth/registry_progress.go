package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/berth-run/berth"
)

// progressBars prints the per-layer progress of a pull or push as docker
// does: on a terminal, one line per layer redrawn in place (cursor
// movement) with a progress bar; otherwise one line per change of phase.
type progressBars struct {
	out   io.Writer
	tty   bool
	width int               // terminal columns (lines are cut to fit, so cursor movement stays right)
	ids   []string          // layers in the order they appeared (terminal lines)
	lines map[string]string // id -> last line drawn
	phase map[string]string // id -> last phase printed (not a terminal)
}

func newProgressBars(out io.Writer) *progressBars {
	tty, width := false, 0
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		tty = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	return &progressBars{out: out, tty: tty, width: width, lines: map[string]string{}, phase: map[string]string{}}
}

// update is the berth.WithProgress callback (berth serializes the calls).
func (p *progressBars) update(ev berth.Progress) {
	if !p.tty {
		// Like docker: phase changes only, no byte counts.
		if p.phase[ev.ID] == ev.Phase || progressBar(ev) != "" {
			return
		}
		p.phase[ev.ID] = ev.Phase
		fmt.Fprintf(p.out, "%s: %s\n", ev.ID, phaseText(ev))
		return
	}
	line := fmt.Sprintf("%s: %s", ev.ID, phaseText(ev))
	if bar := progressBar(ev); bar != "" {
		line += " " + bar
	}
	if p.width > 1 && len(line) >= p.width {
		line = line[:p.width-1]
	}
	i := p.index(ev.ID)
	if i < 0 {
		p.ids = append(p.ids, ev.ID)
		p.lines[ev.ID] = line
		fmt.Fprintf(p.out, "%s\n", line)
		return
	}
	if p.lines[ev.ID] == line {
		return
	}
	p.lines[ev.ID] = line
	up := len(p.ids) - i
	// Up to the layer's line, clear it, draw, back down.
	fmt.Fprintf(p.out, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, line, up)
}

func (p *progressBars) index(id string) int {
	for i, x := range p.ids {
		if x == id {
			return i
		}
	}
	return -1
}

func phaseText(ev berth.Progress) string {
	if ev.Phase == berth.PhaseMounted && ev.From != "" {
		return "Mounted from " + ev.From
	}
	return ev.Phase
}

// progressBar is docker's "[=====>      ]  1.2MB/4.5MB" for phases with
// byte counts.
func progressBar(ev berth.Progress) string {
	switch ev.Phase {
	case berth.PhaseDownloading, berth.PhaseExtracting, berth.PhasePushing:
	default:
		return ""
	}
	if ev.Total <= 0 {
		return humanSize(ev.Current)
	}
	const width = 50
	n := int(float64(width) * float64(ev.Current) / float64(ev.Total))
	n = min(max(n, 0), width)
	arrow := ">"
	if n == width {
		arrow = ""
	}
	bar := "[" + strings.Repeat("=", n) + arrow + strings.Repeat(" ", width-n-len(arrow)) + "]"
	return fmt.Sprintf("%s %8s/%s", bar, humanSize(ev.Current), humanSize(ev.Total))
}
