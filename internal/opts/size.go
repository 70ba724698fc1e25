package opts

import (
	"math"
	"strconv"
	"strings"
)

// binaryUnits are the multipliers of docker's RAMInBytes (binary, any
// case): 1k = 1024.
var binaryUnits = map[byte]float64{
	'k': 1 << 10,
	'm': 1 << 20,
	'g': 1 << 30,
	't': 1 << 40,
	'p': 1 << 50,
}

// isDecimal reports whether s is digits with an optional fraction ("12",
// "1.5", "1.", ".5").
func isDecimal(s string) bool {
	digits := 0
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// ParseMemory parses a size as docker's --memory, --shm-size and
// tmpfs-size take it (go-units RAMInBytes): a decimal number, an optional
// space, and an optional unit b, k, m, g, t or p, optionally followed by
// "b" or "ib", in any case; units are binary ("1k" = 1024, "1.5g" =
// 1610612736). A plain number is bytes. Negative numbers, garbage and
// sizes that overflow int64 are ErrInvalid.
func ParseMemory(s string) (int64, error) {
	sep := strings.LastIndexAny(s, "0123456789. ")
	if sep == -1 {
		return 0, invalidf("invalid size: %q", s)
	}
	num, sfx := s[:sep+1], s[sep+1:]
	if s[sep] == ' ' {
		num = s[:sep]
	}
	if !isDecimal(num) {
		return 0, invalidf("invalid size: %q", s)
	}
	size, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, invalidf("invalid size: %q", s)
	}
	mul := 1.0
	if sfx != "" {
		l := strings.ToLower(sfx)
		switch {
		case len(l) > 3:
			return 0, invalidf("invalid suffix: %q", sfx)
		case l == "b":
		default:
			m, ok := binaryUnits[l[0]]
			if !ok || (len(l) == 2 && l[1] != 'b') || (len(l) == 3 && l[1:] != "ib") {
				return 0, invalidf("invalid suffix: %q", sfx)
			}
			mul = m
		}
	}
	v := size * mul
	if v >= math.MaxInt64 {
		return 0, invalidf("size %q is too large", s)
	}
	return int64(v), nil
}

// ParseMemorySwap parses docker's --memory-swap: a size, or -1 for
// unlimited swap.
func ParseMemorySwap(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	return ParseMemory(s)
}

// ParseCPUs parses docker's --cpus ("1.5") into nano CPUs (1500000000).
// At most nine decimals are allowed ("value is too precise" otherwise);
// negative values are ErrInvalid.
func ParseCPUs(s string) (int64, error) {
	if !isDecimal(s) {
		return 0, invalidf("failed to parse %q as a number of CPUs", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 9 {
		return 0, invalidf("cpus %q: value is too precise", s)
	}
	var w int64
	if whole != "" {
		var err error
		w, err = strconv.ParseInt(whole, 10, 64)
		if err != nil || w > math.MaxInt64/1_000_000_000-1 {
			return 0, invalidf("cpus %q: value is too large", s)
		}
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return w*1e9 + f, nil
}
