package cgroup

import (
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runFilter interprets a device program the way the kernel runs it.
func runFilter(t *testing.T, insns []bpfInsn, typ byte, major, minor uint32, access string) bool {
	t.Helper()
	var acc uint32
	for _, c := range access {
		acc |= map[rune]uint32{'m': devcgMknod, 'r': devcgRead, 'w': devcgWrite}[c]
	}
	ty := uint32(devcgChar)
	if typ == 'b' {
		ty = devcgBlock
	}
	ctx := [3]uint32{acc<<16 | ty, major, minor}
	var reg [11]uint64
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		require.Less(t, pc, len(insns), "ran off the end")
		require.Less(t, steps, 100000)
		in := insns[pc]
		dst, src := in.regs&0xf, in.regs>>4
		switch in.code {
		case bpfLdxMemW:
			require.Equal(t, uint8(regCtx), src)
			reg[dst] = uint64(ctx[in.off/4])
		case bpfAndK32:
			reg[dst] = uint64(uint32(reg[dst]) & uint32(in.imm))
		case bpfRshK32:
			reg[dst] = uint64(uint32(reg[dst]) >> uint32(in.imm))
		case bpfMovK64:
			reg[dst] = uint64(int64(in.imm))
		case bpfJa:
			pc += int(in.off)
		case bpfJneK:
			if reg[dst] != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case bpfJsetK:
			if reg[dst]&uint64(int64(in.imm)) != 0 {
				pc += int(in.off)
			}
		case bpfExit:
			return reg[regRet] == 1
		default:
			t.Fatalf("unknown opcode %#x", in.code)
		}
	}
}

// reachable checks that every instruction can run (the verifier refuses
// dead code).
func reachable(t *testing.T, insns []bpfInsn) {
	t.Helper()
	seen := make([]bool, len(insns))
	var visit func(pc int)
	visit = func(pc int) {
		for pc < len(insns) && !seen[pc] {
			seen[pc] = true
			in := insns[pc]
			switch in.code {
			case bpfExit:
				return
			case bpfJa:
				pc += int(in.off) + 1
				continue
			case bpfJneK, bpfJsetK:
				visit(pc + int(in.off) + 1)
			}
			pc++
		}
	}
	visit(0)
	for i, s := range seen {
		assert.True(t, s, "instruction %d is unreachable", i)
	}
}

func compile(t *testing.T, rules ...specs.LinuxDeviceCgroup) []bpfInsn {
	t.Helper()
	var rs []deviceRule
	for i := range rules {
		r, err := parseDeviceRule(&rules[i])
		require.NoError(t, err)
		rs = append(rs, r)
	}
	insns, err := deviceProgram(rs)
	require.NoError(t, err)
	reachable(t, insns)
	return insns
}

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		d.Major = ptr(major)
	}
	if minor >= 0 {
		d.Minor = ptr(minor)
	}
	return d
}

func TestDeviceProgram(t *testing.T) {
	type req struct {
		typ          byte
		major, minor uint32
		access       string
		want         bool
	}
	for i, c := range []struct {
		rules []specs.LinuxDeviceCgroup
		reqs  []req
	}{
		{ // no rules: nothing allowed
			nil,
			[]req{{'c', 1, 3, "r", false}, {'b', 8, 0, "w", false}},
		},
		{ // allow all
			[]specs.LinuxDeviceCgroup{{Allow: true}},
			[]req{{'c', 1, 3, "rwm", true}, {'b', 8, 0, "w", true}},
		},
		{ // docker's shape: deny all, then allow some
			[]specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				dev(true, "c", 1, 3, "rwm"),
				dev(true, "c", 136, -1, "rw"),
				dev(true, "a", -1, -1, "m"),
				dev(true, "b", 8, 0, "r"),
			},
			[]req{
				{'c', 1, 3, "rw", true}, {'c', 1, 5, "r", false},
				{'c', 136, 7, "rw", true}, {'c', 136, 7, "rwm", true}, // m from the mknod rule
				{'b', 99, 1, "m", true}, {'b', 99, 1, "r", false},
				{'b', 8, 0, "r", true}, {'b', 8, 0, "rw", false}, {'c', 8, 0, "r", false},
			},
		},
		{ // later rules win, bit by bit
			[]specs.LinuxDeviceCgroup{
				{Allow: true},
				dev(false, "c", 1, 3, "w"),
				dev(false, "b", -1, -1, "rwm"),
				dev(true, "b", 8, 0, "r"),
			},
			[]req{
				{'c', 1, 3, "r", true}, {'c', 1, 3, "w", false}, {'c', 1, 3, "rw", false},
				{'c', 1, 5, "rw", true}, {'b', 7, 0, "r", false}, {'b', 8, 0, "r", true}, {'b', 8, 0, "rw", false},
			},
		},
		{ // an unconditional deny after allows ends everything
			[]specs.LinuxDeviceCgroup{dev(true, "c", 1, 3, "rwm"), {Allow: false}},
			[]req{{'c', 1, 3, "r", false}},
		},
	} {
		insns := compile(t, c.rules...)
		for _, r := range c.reqs {
			assert.Equal(t, r.want, runFilter(t, insns, r.typ, r.major, r.minor, r.access),
				"case %d: %c %d:%d %s", i, r.typ, r.major, r.minor, r.access)
		}
	}
}

func TestDeviceProgramSize(t *testing.T) {
	var rules []specs.LinuxDeviceCgroup
	for i := 0; i < 300; i++ {
		rules = append(rules, dev(true, "c", int64(i), int64(i), "rw"))
	}
	insns := compile(t, rules...)
	assert.True(t, runFilter(t, insns, 'c', 299, 299, "rw"))
	assert.False(t, runFilter(t, insns, 'c', 299, 298, "r"))
	assert.Len(t, encodeProgram(insns), 8*len(insns))
	_, err := deviceProgram(make([]deviceRule, maxDeviceRules+1))
	assert.Error(t, err)
	assert.Equal(t, "c 1:3 rw", fmt.Sprint(deviceRule{typ: 'c', major: 1, minor: 3, access: "rw"}))
}
