package portmap

import (
	"net"
	"net/netip"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Registers: reg1/reg2 are the 16-byte registers nft itself uses for
// matches and NAT arguments; concatenated map keys are built in the 4-byte
// registers from reg32 on, one field per register (or four for an IPv6
// address), which is the layout the kernel's set lookup expects.
const (
	reg1  = unix.NFT_REG_1
	reg2  = unix.NFT_REG_2
	reg32 = unix.NFT_REG32_00
)

const ipsDstNAT = 1 << 5 // IPS_DST_NAT in ct status

func nfproto(v6 bool) byte {
	if v6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

func l4proto(proto string) byte {
	switch proto {
	case UDP:
		return unix.IPPROTO_UDP
	case SCTP:
		return unix.IPPROTO_SCTP
	default:
		return unix.IPPROTO_TCP
	}
}

func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_TCP:
		return TCP
	case unix.IPPROTO_UDP:
		return UDP
	case unix.IPPROTO_SCTP:
		return SCTP
	}
	return ""
}

// ifname pads an interface name to IFNAMSIZ, the form meta iifname/oifname
// load into a register.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func be16(v uint16) []byte { return binaryutil.BigEndian.PutUint16(v) }

// exprs concatenates expression lists.
func exprs(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func matchNfproto(v6 bool) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{nfproto(v6)}},
	}
}

func matchL4proto(proto string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{l4proto(proto)}},
	}
}

// matchDport matches the destination port of TCP, UDP and SCTP (the same
// offset in all three headers).
func matchDport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: be16(port)},
	}
}

func loadDaddr(v6 bool, reg uint32) expr.Any {
	if v6 {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

func matchDaddr(ip netip.Addr) []expr.Any {
	return []expr.Any{
		loadDaddr(ip.Is6(), reg1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ip.AsSlice()},
	}
}

// matchSaddrLoopback4 matches IPv4 sources in 127.0.0.0/8.
func matchSaddrLoopback4() []expr.Any {
	return exprs(matchNfproto(false), []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{127}},
	})
}

// matchSaddrPrefix matches sources in p.
func matchSaddrPrefix(p netip.Prefix) []expr.Any {
	off, n := uint32(12), uint32(4)
	if p.Addr().Is6() {
		off, n = 8, 16
	}
	mask := net.CIDRMask(p.Bits(), p.Addr().BitLen())
	return exprs(matchNfproto(p.Addr().Is6()), []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: p.Masked().Addr().AsSlice()},
	})
}

func matchIfname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifname(name)},
	}
}

func matchIfnameIn(key expr.MetaKey, set string, invert bool) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Lookup{SourceRegister: reg1, SetName: set, Invert: invert},
	}
}

// ifnameVmap jumps through map set keyed by the interface name.
func ifnameVmap(key expr.MetaKey, set string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Lookup{SourceRegister: reg1, SetName: set, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT},
	}
}

// matchFibLocal matches packets addressed to an address of this host
// (fib daddr type local).
func matchFibLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func matchCtBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

func matchEstablished() []expr.Any {
	return matchCtBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
}

func matchDNATed() []expr.Any { return matchCtBits(expr.CtKeySTATUS, ipsDstNAT) }

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}

func masquerade() []expr.Any { return []expr.Any{&expr.Masq{}} }

// Dispatch of published ports: each rule builds a map key in the 4-byte
// registers and jumps through the map's verdict.
func dispatchHP4() []expr.Any {
	return exprs(matchNfproto(false), []expr.Any{
		loadDaddr(false, reg32),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32 + 1},
		&expr.Payload{DestRegister: reg32 + 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg32, SetName: mapHP4, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT},
	})
}

func dispatchHP6() []expr.Any {
	return exprs(matchNfproto(true), []expr.Any{
		loadDaddr(true, reg32),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32 + 4},
		&expr.Payload{DestRegister: reg32 + 5, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg32, SetName: mapHP6, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT},
	})
}

func dispatchAny() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg32},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32 + 1},
		&expr.Payload{DestRegister: reg32 + 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg32, SetName: mapAny, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT},
	}
}

// dnatRule is the rule of one binding in its container's chain.
func dnatRule(k portKey, b Binding) []expr.Any {
	v6 := b.ContainerIP.Is6()
	e := exprs(matchNfproto(v6), matchL4proto(b.Protocol), matchDport(b.HostPort))
	if !k.any {
		e = append(e, matchDaddr(k.ip)...)
	}
	return append(e,
		&expr.Immediate{Register: reg1, Data: b.ContainerIP.AsSlice()},
		&expr.Immediate{Register: reg2, Data: be16(b.ContainerPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nfproto(v6)),
			RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
	)
}

// Map keys: each field padded to 4 bytes, as in the registers.
func (k portKey) mapName() string {
	switch {
	case k.any:
		return mapAny
	case k.v6:
		return mapHP6
	default:
		return mapHP4
	}
}

func (k portKey) bytes() []byte {
	tail := []byte{l4proto(k.proto), 0, 0, 0, byte(k.port >> 8), byte(k.port), 0, 0}
	if k.any {
		return append([]byte{nfproto(k.v6), 0, 0, 0}, tail...)
	}
	return append(k.ip.AsSlice(), tail...)
}

// parseKey decodes an element key of map name.
func parseKey(name string, b []byte) (portKey, bool) {
	var k portKey
	var rest []byte
	switch name {
	case mapAny:
		if len(b) != 12 {
			return k, false
		}
		k.any = true
		k.v6 = b[0] == unix.NFPROTO_IPV6
		rest = b[4:]
	case mapHP4:
		if len(b) != 12 {
			return k, false
		}
		k.ip = netip.AddrFrom4([4]byte(b[:4]))
		rest = b[4:]
	case mapHP6:
		if len(b) != 24 {
			return k, false
		}
		k.v6 = true
		k.ip = netip.AddrFrom16([16]byte(b[:16]))
		rest = b[16:]
	default:
		return k, false
	}
	k.proto = protoName(rest[0])
	k.port = uint16(rest[4])<<8 | uint16(rest[5])
	return k, k.proto != ""
}
