// Package proc identifies processes across time: a PID together with its
// start time (from /proc/PID/stat) names one process even after the PID is
// reused. The store uses it to tell whether the owner of a temp file, a
// container's creator or its monitor is still alive.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ID is a process identity: its PID and its start time in clock ticks
// since boot. The zero ID is no process.
type ID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// String is "PID.START", safe in file names.
func (id ID) String() string { return fmt.Sprintf("%d.%d", id.PID, id.Start) }

// ParseID parses the String form.
func ParseID(s string) (ID, bool) {
	p, st, ok := strings.Cut(s, ".")
	if !ok {
		return ID{}, false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(st, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return ID{}, false
	}
	return ID{PID: pid, Start: start}, true
}

// Self is the calling process's identity.
func Self() ID {
	pid := os.Getpid()
	st, _ := StartTime(pid)
	return ID{PID: pid, Start: st}
}

// Of returns the identity of the running process pid.
func Of(pid int) (ID, error) {
	st, err := StartTime(pid)
	if err != nil {
		return ID{}, err
	}
	return ID{PID: pid, Start: st}, nil
}

// Alive reports whether the process id still runs (and is not a zombie).
func (id ID) Alive() bool {
	if id.PID <= 0 {
		return false
	}
	st, state, err := stat(id.PID)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return id.Start == 0 || st == id.Start
}

// StartTime returns field 22 of /proc/PID/stat: the process start time in
// clock ticks after boot.
func StartTime(pid int) (uint64, error) {
	st, _, err := stat(pid)
	return st, err
}

func stat(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces and parentheses: parse after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+2:])
	// f[0] is field 3 (state); start time is field 22, f[19].
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return v, f[0][0], nil
}
