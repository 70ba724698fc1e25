package portmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Reads of the table go through vishvananda's nl package rather than
// google/nftables, whose getters flatten kernel errors into strings: here
// ENOENT (no such table, chain or set) must stay matchable, and only the
// two attributes berth needs are decoded.

const nlaTypeMask = 0x3fff // strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

func nftRequest(msg int, flags int, attrs ...*nl.RtAttr) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|msg, flags)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.NFPROTO_INET, Version: unix.NFNETLINK_V0})
	for _, a := range attrs {
		req.AddData(a)
	}
	return req
}

// execute runs req, retrying a dump the kernel reports as interrupted (the
// ruleset changed while it was read).
func execute(req *nl.NetlinkRequest) ([][]byte, error) {
	for range 10 {
		msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
		if errors.Is(err, nl.ErrDumpInterrupted) {
			continue
		}
		return msgs, err
	}
	return nil, fmt.Errorf("nftables dump kept being interrupted")
}

func attrs(b []byte) (map[uint16][]byte, error) {
	parsed, err := nl.ParseRouteAttr(b)
	if err != nil {
		return nil, err
	}
	m := make(map[uint16][]byte, len(parsed))
	for _, a := range parsed {
		m[a.Attr.Type&nlaTypeMask] = a.Value
	}
	return m, nil
}

// dump runs a dump request and returns the top-level attributes of each
// object in it; a missing table, chain or set (ENOENT) yields none.
func dump(req *nl.NetlinkRequest) ([]map[uint16][]byte, error) {
	msgs, err := execute(req)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]map[uint16][]byte, 0, len(msgs))
	for _, m := range msgs {
		if len(m) < nl.SizeofNfgenmsg {
			continue
		}
		a, err := attrs(m[nl.SizeofNfgenmsg:])
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

type ruleInfo struct {
	handle  uint64
	comment string
}

// dumpRules returns the handles and comments of the rules in chain. A
// missing table or chain yields no rules.
func dumpRules(table, chain string) ([]ruleInfo, error) {
	req := nftRequest(unix.NFT_MSG_GETRULE, unix.NLM_F_DUMP,
		nl.NewRtAttr(unix.NFTA_RULE_TABLE, nl.ZeroTerminated(table)),
		nl.NewRtAttr(unix.NFTA_RULE_CHAIN, nl.ZeroTerminated(chain)))
	objs, err := dump(req)
	if err != nil {
		return nil, err
	}
	var out []ruleInfo
	for _, a := range objs {
		// Dump filters on table and chain already; check anyway.
		if cstr(a[unix.NFTA_RULE_CHAIN]) != chain || cstr(a[unix.NFTA_RULE_TABLE]) != table {
			continue
		}
		r := ruleInfo{comment: udataComment(a[unix.NFTA_RULE_USERDATA])}
		if h := a[unix.NFTA_RULE_HANDLE]; len(h) == 8 {
			r.handle = binary.BigEndian.Uint64(h)
		}
		out = append(out, r)
	}
	return out, nil
}

// chainExists asks the kernel for one chain.
func chainExists(table, chain string) (bool, error) {
	req := nftRequest(unix.NFT_MSG_GETCHAIN, 0,
		nl.NewRtAttr(unix.NFTA_CHAIN_TABLE, nl.ZeroTerminated(table)),
		nl.NewRtAttr(unix.NFTA_CHAIN_NAME, nl.ZeroTerminated(chain)))
	_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

// dumpChains returns the names of the chains of table (none if the table
// is missing).
func dumpChains(table string) (map[string]bool, error) {
	req := nftRequest(unix.NFT_MSG_GETCHAIN, unix.NLM_F_DUMP,
		nl.NewRtAttr(unix.NFTA_CHAIN_TABLE, nl.ZeroTerminated(table)))
	objs, err := dump(req)
	if err != nil || objs == nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range objs {
		if cstr(a[unix.NFTA_CHAIN_TABLE]) == table {
			out[cstr(a[unix.NFTA_CHAIN_NAME])] = true
		}
	}
	return out, nil
}

type elemInfo struct {
	key     []byte
	comment string
}

// dumpElements returns the keys and comments of a set's elements; a
// missing table or set yields none.
func dumpElements(table, set string) ([]elemInfo, error) {
	req := nftRequest(unix.NFT_MSG_GETSETELEM, unix.NLM_F_DUMP,
		nl.NewRtAttr(unix.NFTA_SET_ELEM_LIST_TABLE, nl.ZeroTerminated(table)),
		nl.NewRtAttr(unix.NFTA_SET_ELEM_LIST_SET, nl.ZeroTerminated(set)))
	objs, err := dump(req)
	if err != nil {
		return nil, err
	}
	var out []elemInfo
	for _, a := range objs {
		list, err := nl.ParseRouteAttr(a[unix.NFTA_SET_ELEM_LIST_ELEMENTS])
		if err != nil {
			return nil, err
		}
		for _, le := range list {
			ea, err := attrs(le.Value)
			if err != nil {
				return nil, err
			}
			ka, err := attrs(ea[unix.NFTA_SET_ELEM_KEY])
			if err != nil {
				return nil, err
			}
			out = append(out, elemInfo{
				key:     ka[unix.NFTA_DATA_VALUE],
				comment: udataComment(ea[unix.NFTA_SET_ELEM_USERDATA]),
			})
		}
	}
	return out, nil
}

// udataComment extracts the comment TLV (type 0, as nft writes it) from
// libnftnl user data.
func udataComment(b []byte) string {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			return ""
		}
		if typ == 0 {
			return cstr(b[2 : 2+n])
		}
		b = b[2+n:]
	}
	return ""
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
