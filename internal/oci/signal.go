package oci

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-run/berth/internal/errdefs"
)

// linuxSignals are the Linux signal numbers by name (without SIG), as the
// container's kernel knows them whatever system berth is built on.
var linuxSignals = map[string]syscall.Signal{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6,
	"BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12,
	"PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17, "CLD": 17,
	"CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23,
	"XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
	"POLL": 29, "PWR": 30, "SYS": 31,
}

const (
	sigRTMin = 34
	sigRTMax = 64
)

// ParseSignal parses a signal as docker's --stop-signal and STOPSIGNAL
// take it: a number (1-64), or a name with or without SIG in any case,
// including RTMIN+n and RTMAX-n. The result is the Linux signal number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid signal: %s", s))
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := linuxSignals[name]; ok {
		return sig, nil
	}
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"RTMIN", sigRTMin, 1}, {"RTMAX", sigRTMax, -1}} {
		rest, ok := strings.CutPrefix(name, rt.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return syscall.Signal(rt.base), nil
		}
		op := "+"
		if rt.sign < 0 {
			op = "-"
		}
		if d, ok := strings.CutPrefix(rest, op); ok {
			if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= sigRTMax-sigRTMin {
				return syscall.Signal(rt.base + rt.sign*n), nil
			}
		}
	}
	return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid signal: %s", s))
}

// StopSignal returns the signal that stops the container: cfg.StopSignal,
// else the image's, else SIGTERM (docker's order).
func StopSignal(cfg Config) (syscall.Signal, error) {
	s := cfg.StopSignal
	if s == "" {
		s = cfg.Image.StopSignal
	}
	if s == "" {
		return syscall.Signal(15), nil
	}
	return ParseSignal(s)
}
