package decoder

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// XfrmGroups are the multicast groups of NETLINK_XFRM (XFRMNLGRP_*), by the
// names a configuration may give them. Joining acquire tells the kernel a
// key manager is listening: see Xfrm.
var XfrmGroups = map[string]uint32{
	"acquire": 1,
	"expire":  2,
	"sa":      3,
	"policy":  4,
	"aevents": 5,
	"report":  6,
	"migrate": 7,
	"mapping": 8,
}

// The xfrm messages the kernel multicasts (XFRM_MSG_*), from
// linux/xfrm.h. A test checks these against the header.
const (
	xfrmMsgNewSA       = 0x10
	xfrmMsgDelSA       = 0x11
	xfrmMsgNewPolicy   = 0x13
	xfrmMsgDelPolicy   = 0x14
	xfrmMsgAcquire     = 0x17
	xfrmMsgExpire      = 0x18
	xfrmMsgUpdPolicy   = 0x19
	xfrmMsgUpdSA       = 0x1a
	xfrmMsgPolExpire   = 0x1b
	xfrmMsgFlushSA     = 0x1c
	xfrmMsgFlushPolicy = 0x1d
	xfrmMsgNewAE       = 0x1e
	xfrmMsgReport      = 0x20
	xfrmMsgMigrate     = 0x21
	xfrmMsgMapping     = 0x26
	xfrmaTmpl          = 5 // XFRMA_TMPL
	xfrmaSA            = 6 // XFRMA_SA
	xfrmaPolicy        = 7 // XFRMA_POLICY
	xfrmPolicyDirCount = 3 // in, out, fwd; sockets' policies add XFRM_POLICY_MAX
	xfrmSelectorLen    = 56
	xfrmUsersaInfoLen  = 224
	xfrmUsersaIDLen    = 24
	xfrmUserExpireLen  = 232
	xfrmPolicyInfoLen  = 168
	xfrmPolExpireLen   = 176
	xfrmPolicyIDLen    = 64
	xfrmUserAcquireLen = 280
	xfrmUserTmplLen    = 64
	xfrmAeventIDLen    = 48
	xfrmUserReportLen  = 60
	xfrmUserMappingLen = 64
	xfrmUsersaFlushLen = 1

	// IPsec protocols, as Linux numbers them.
	xfrmProtoESP  = 50
	xfrmProtoAH   = 51
	xfrmProtoComp = 108
)

// The xfrm decoder's event names.
var (
	xfrmSANew            = []byte("sa/new")
	xfrmSAUpdate         = []byte("sa/update")
	xfrmSADel            = []byte("sa/del")
	xfrmSAFlush          = []byte("sa/flush")
	xfrmSASoftExpire     = []byte("sa/soft_expire")
	xfrmSAHardExpire     = []byte("sa/hard_expire")
	xfrmSAAevent         = []byte("sa/aevent")
	xfrmSAMapping        = []byte("sa/mapping")
	xfrmAcquire          = []byte("acquire")
	xfrmPolicyNew        = []byte("policy/new")
	xfrmPolicyUpdate     = []byte("policy/update")
	xfrmPolicyDel        = []byte("policy/del")
	xfrmPolicyFlush      = []byte("policy/flush")
	xfrmPolicySoftExpire = []byte("policy/soft_expire")
	xfrmPolicyHardExpire = []byte("policy/hard_expire")
	xfrmPolicyMigrate    = []byte("policy/migrate")
	xfrmReport           = []byte("report")
)

// xfrmDirs names the directions of policies (XFRM_POLICY_IN, OUT, FWD).
var xfrmDirs = [xfrmPolicyDirCount]string{"in", "out", "fwd"}

// Xfrm decodes the kernel's IPsec notifications (NETLINK_XFRM, groups
// XfrmGroups) into events about tunnels and policies:
//
//   - sa/new, sa/update, sa/del, sa/flush: security associations added,
//     updated, deleted or all flushed (group sa);
//   - sa/soft_expire and sa/hard_expire: an SA reached its soft limit (the
//     key manager should rekey) or its hard one (it is gone; with no
//     replacement, so is the tunnel), and policy/soft_expire and
//     policy/hard_expire likewise for policies with lifetimes (group
//     expire);
//   - policy/new, policy/update, policy/del, policy/flush (group policy);
//   - acquire: traffic needs an SA that does not exist, and the kernel asks
//     a key manager for one (group acquire); a burst means key exchange
//     fails;
//   - sa/aevent (replay and lifetime counters, group aevents), report
//     (group report), policy/migrate (group migrate) and sa/mapping (a
//     NAT-T peer's address or port changed, group mapping).
//
// The object of an SA's event is its tunnel, which a rekey keeps: the
// protocol, the source and destination addresses and the reqid, as "esp
// 192.0.2.1->198.51.100.2 reqid 7", never the SPI, which every rekey
// changes. The value is the SPI (in host order), so that the last value
// shows the SA in use. A policy's object is its selector and direction, as
// "10.0.0.0/24->10.1.0.0/24 out", with " proto P" and ports where the
// selector has them; its value is the policy's index. An acquire's object
// is the tunnel it asks an SA for, its reqid that of the policy's template
// for the protocol. Flushes have the protocol (sa/flush) or no object.
// A policy deleted or at its hard expiry is gone (Event.Gone): its
// selector's series are forgotten. An SA's deletion or expiry removes
// nothing, since its tunnel lives on in the next SA.
//
// The acquire group must not be joined where no key manager runs: a
// listener on it makes the kernel believe one does (xfrm_state_find asks
// km_query, and it succeeds if any socket listens), so packets that match
// a policy wait for SAs nobody will install instead of being refused at
// once.
type Xfrm struct {
	faults
	buf []byte
}

// NewXfrm returns an xfrm decoder.
func NewXfrm() *Xfrm {
	return &Xfrm{}
}

// Decode implements Decoder. Each message gives one event; messages of
// types the decoder does not know give none.
func (d *Xfrm) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return appendMessages(events, datagram, d)
}

func (d *Xfrm) diagnose(datagram []byte) []Problem {
	return diagnoseMessages(datagram, NewXfrm())
}

func (d *Xfrm) appendMessage(events []Event, m message) ([]Event, bool) {
	start := len(d.buf)
	var ev Event
	ok, good := d.decode(&ev, m)
	switch {
	case !good:
		// Nothing of a malformed message stays.
		d.buf = d.buf[:start]
	case ok:
		events = append(events, ev)
	}
	return events, good
}

// decode decodes message m into ev; ok says whether it is an event, good
// whether it was well-formed.
func (d *Xfrm) decode(ev *Event, m message) (ok, good bool) {
	p := m.Payload
	switch m.Type {
	case xfrmMsgNewSA, xfrmMsgUpdSA:
		if len(p) < xfrmUsersaInfoLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_usersa_info (%d bytes)", len(p), xfrmUsersaInfoLen))
		}
		ev.Name = xfrmSANew
		if m.Type == xfrmMsgUpdSA {
			ev.Name = xfrmSAUpdate
		}
		return true, d.sa(ev, p)
	case xfrmMsgDelSA:
		// struct xfrm_usersa_id, then the SA whole in XFRMA_SA.
		if len(p) < xfrmUsersaIDLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_usersa_id (%d bytes)", len(p), xfrmUsersaIDLen))
		}
		sa, f := d.attr(m, nlmsgAlign(xfrmUsersaIDLen), xfrmaSA, xfrmUsersaInfoLen)
		if f.reason != "" {
			return false, d.fail(m, f)
		}
		ev.Name = xfrmSADel
		if sa == nil {
			// Without XFRMA_SA, the addresses the id has.
			ev.Object = d.tunnel(p[22], p[20], nil, p[0:16], 0)
			ev.Value, ev.HasValue = float64(binary.BigEndian.Uint32(p[16:20])), true
			return true, true
		}
		return true, d.sa(ev, sa)
	case xfrmMsgExpire:
		if len(p) < xfrmUserExpireLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_user_expire (%d bytes)", len(p), xfrmUserExpireLen))
		}
		ev.Name = xfrmSASoftExpire
		if p[xfrmUsersaInfoLen] != 0 {
			ev.Name = xfrmSAHardExpire
		}
		return true, d.sa(ev, p)
	case xfrmMsgFlushSA:
		if len(p) < xfrmUsersaFlushLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_usersa_flush (%d bytes)", len(p), xfrmUsersaFlushLen))
		}
		ev.Name = xfrmSAFlush
		if p[0] != 0 {
			ev.Object = d.proto(p[0])
		}
		return true, true
	case xfrmMsgNewPolicy, xfrmMsgUpdPolicy:
		if len(p) < xfrmPolicyInfoLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_userpolicy_info (%d bytes)", len(p), xfrmPolicyInfoLen))
		}
		ev.Name = xfrmPolicyNew
		if m.Type == xfrmMsgUpdPolicy {
			ev.Name = xfrmPolicyUpdate
		}
		return true, d.policy(ev, p)
	case xfrmMsgDelPolicy:
		// struct xfrm_userpolicy_id, whose selector is empty when the
		// policy was deleted by index, then the policy in XFRMA_POLICY.
		if len(p) < xfrmPolicyIDLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_userpolicy_id (%d bytes)", len(p), xfrmPolicyIDLen))
		}
		pol, f := d.attr(m, xfrmPolicyIDLen, xfrmaPolicy, xfrmPolicyInfoLen)
		if f.reason != "" {
			return false, d.fail(m, f)
		}
		ev.Name = xfrmPolicyDel
		if pol == nil {
			ev.Object = d.selector(p[:xfrmSelectorLen], p[60])
			ev.Value, ev.HasValue = float64(binary.NativeEndian.Uint32(p[56:60])), true
		} else {
			d.policy(ev, pol)
		}
		ev.Gone = ev.Object
		return true, true
	case xfrmMsgPolExpire:
		if len(p) < xfrmPolExpireLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_user_polexpire (%d bytes)", len(p), xfrmPolExpireLen))
		}
		d.policy(ev, p)
		ev.Name = xfrmPolicySoftExpire
		if p[xfrmPolicyInfoLen] != 0 {
			// The kernel deletes a policy at its hard expiry.
			ev.Name, ev.Gone = xfrmPolicyHardExpire, ev.Object
		}
		return true, true
	case xfrmMsgFlushPolicy:
		ev.Name = xfrmPolicyFlush
		return true, true
	case xfrmMsgAcquire:
		if len(p) < xfrmUserAcquireLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_user_acquire (%d bytes)", len(p), xfrmUserAcquireLen))
		}
		return true, d.acquire(ev, m)
	case xfrmMsgNewAE:
		// struct xfrm_aevent_id: the SA's id, its source and reqid.
		if len(p) < xfrmAeventIDLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_aevent_id (%d bytes)", len(p), xfrmAeventIDLen))
		}
		ev.Name = xfrmSAAevent
		ev.Object = d.tunnel(p[22], p[20], p[24:40], p[0:16], binary.NativeEndian.Uint32(p[44:48]))
		ev.Value, ev.HasValue = float64(binary.BigEndian.Uint32(p[16:20])), true
		return true, true
	case xfrmMsgMapping:
		// struct xfrm_user_mapping: the SA's id, reqid, and its source
		// address before and after.
		if len(p) < xfrmUserMappingLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_user_mapping (%d bytes)", len(p), xfrmUserMappingLen))
		}
		ev.Name = xfrmSAMapping
		ev.Object = d.tunnel(p[22], p[20], p[28:44], p[0:16], binary.NativeEndian.Uint32(p[24:28]))
		ev.Value, ev.HasValue = float64(binary.BigEndian.Uint32(p[16:20])), true
		return true, true
	case xfrmMsgReport:
		// struct xfrm_user_report: a protocol and a selector.
		if len(p) < xfrmUserReportLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_user_report (%d bytes)", len(p), xfrmUserReportLen))
		}
		ev.Name = xfrmReport
		ev.Object = d.selector(p[4:4+xfrmSelectorLen], 0xff)
		return true, true
	case xfrmMsgMigrate:
		// struct xfrm_userpolicy_id of the policy whose SAs moved.
		if len(p) < xfrmPolicyIDLen {
			return false, d.fail(m, faultf("payload of %d bytes, too short for struct xfrm_userpolicy_id (%d bytes)", len(p), xfrmPolicyIDLen))
		}
		ev.Name = xfrmPolicyMigrate
		ev.Object = d.selector(p[:xfrmSelectorLen], p[60])
		return true, true
	}
	return false, true
}

// sa makes ev about the SA in struct xfrm_usersa_info p: its tunnel
// (proto, saddr, id.daddr, reqid) and SPI.
func (d *Xfrm) sa(ev *Event, p []byte) bool {
	id := p[xfrmSelectorLen : xfrmSelectorLen+xfrmUsersaIDLen]
	ev.Object = d.tunnel(id[20], p[212], p[80:96], id[0:16], binary.NativeEndian.Uint32(p[208:212]))
	ev.Value, ev.HasValue = float64(binary.BigEndian.Uint32(id[16:20])), true
	return true
}

// policy makes ev about the policy in struct xfrm_userpolicy_info p: its
// selector and direction, and its index.
func (d *Xfrm) policy(ev *Event, p []byte) bool {
	ev.Object = d.selector(p[:xfrmSelectorLen], p[160])
	ev.Value, ev.HasValue = float64(binary.NativeEndian.Uint32(p[156:160])), true
	return true
}

// acquire makes ev about the struct xfrm_user_acquire p and the templates
// after it.
func (d *Xfrm) acquire(ev *Event, m message) bool {
	p := m.Payload
	proto, daddr, saddr := p[20], p[0:16], p[24:40]
	// The selector's family, unless a template for the protocol says the
	// tunnel's own (its outer addresses may be of another family).
	family := p[40+40]
	var reqid uint32
	var attrs attrDecoder
	d.attrs(&attrs, m, xfrmUserAcquireLen, xfrmAttrNames)
	found := false
	for typ, v := range attrs.All {
		if typ&nlaTypeMask != xfrmaTmpl {
			continue
		}
		if len(v)%xfrmUserTmplLen != 0 {
			return d.fail(m, faultf("XFRMA_TMPL of %d bytes, not a whole number of struct xfrm_user_tmpl (%d bytes)", len(v), xfrmUserTmplLen))
		}
		for ; len(v) > 0 && !found; v = v[xfrmUserTmplLen:] {
			if v[20] == proto {
				family, reqid, found = v[24], binary.NativeEndian.Uint32(v[44:48]), true
			}
		}
	}
	if attrs.Failed() {
		return d.fail(m, attrs.Err())
	}
	ev.Name = xfrmAcquire
	ev.Object = d.tunnel(proto, family, saddr, daddr, reqid)
	return true
}

// attr returns the value of the attribute of type typ (XFRMA_SA or
// XFRMA_POLICY, which hold a struct of size bytes) after the first skip
// bytes of m's payload, nil if there is none, or a fault if the
// attributes cannot be framed or the value is too short.
func (d *Xfrm) attr(m message, skip int, typ uint16, size int) ([]byte, fault) {
	var attrs attrDecoder
	d.attrs(&attrs, m, skip, xfrmAttrNames)
	for t, v := range attrs.All {
		if t&nlaTypeMask == typ {
			if len(v) < size {
				return nil, attrs.Faultf(v, "attribute %s at byte %d carries %d bytes, too few for its struct (%d bytes)", len(v), size)
			}
			return v, fault{}
		}
	}
	if attrs.Failed() {
		return nil, attrs.Err()
	}
	return nil, fault{}
}

// xfrmAttrNames name the attributes the decoder reads.
var xfrmAttrNames = attrNames{xfrmaTmpl: "XFRMA_TMPL", xfrmaSA: "XFRMA_SA", xfrmaPolicy: "XFRMA_POLICY"}

// tunnel returns the object of an SA: "esp 192.0.2.1->198.51.100.2 reqid
// 7". saddr may be nil, for a message that lacks it.
func (d *Xfrm) tunnel(proto, family byte, saddr, daddr []byte, reqid uint32) []byte {
	start := len(d.buf)
	d.buf = append(d.appendProto(d.buf, proto), ' ')
	if saddr != nil {
		d.buf = append(appendXfrmAddr(d.buf, family, saddr), "->"...)
	} else {
		d.buf = append(d.buf, "?->"...)
	}
	d.buf = appendXfrmAddr(d.buf, family, daddr)
	d.buf = strconv.AppendUint(append(d.buf, " reqid "...), uint64(reqid), 10)
	return d.buf[start:len(d.buf):len(d.buf)]
}

// selector returns the object of a policy: its struct xfrm_selector sel
// and direction dir, which is 0xff for none: "10.0.0.0/24->10.1.0.0/24
// out", with " proto 6 sport 22 dport 1024" where the selector has them.
func (d *Xfrm) selector(sel []byte, dir byte) []byte {
	start := len(d.buf)
	family := sel[40]
	d.buf = appendXfrmAddr(d.buf, family, sel[16:32])
	d.buf = strconv.AppendUint(append(d.buf, '/'), uint64(sel[43]), 10)
	d.buf = appendXfrmAddr(append(d.buf, "->"...), family, sel[0:16])
	d.buf = strconv.AppendUint(append(d.buf, '/'), uint64(sel[42]), 10)
	switch {
	case dir == 0xff:
	case int(dir) < len(xfrmDirs):
		d.buf = append(append(d.buf, ' '), xfrmDirs[dir]...)
	default:
		d.buf = strconv.AppendUint(append(d.buf, " dir "...), uint64(dir), 10)
	}
	if proto := sel[44]; proto != 0 {
		d.buf = strconv.AppendUint(append(d.buf, " proto "...), uint64(proto), 10)
	}
	// Ports are in network order, as their masks.
	if binary.BigEndian.Uint16(sel[38:40]) != 0 {
		d.buf = strconv.AppendUint(append(d.buf, " sport "...), uint64(binary.BigEndian.Uint16(sel[36:38])), 10)
	}
	if binary.BigEndian.Uint16(sel[34:36]) != 0 {
		d.buf = strconv.AppendUint(append(d.buf, " dport "...), uint64(binary.BigEndian.Uint16(sel[32:34])), 10)
	}
	return d.buf[start:len(d.buf):len(d.buf)]
}

// proto returns IPsec protocol proto's name, as an object.
func (d *Xfrm) proto(proto byte) []byte {
	start := len(d.buf)
	d.buf = d.appendProto(d.buf, proto)
	return d.buf[start:len(d.buf):len(d.buf)]
}

// appendProto appends IPsec protocol proto's name as ip xfrm names it.
func (d *Xfrm) appendProto(b []byte, proto byte) []byte {
	switch proto {
	case xfrmProtoESP:
		return append(b, "esp"...)
	case xfrmProtoAH:
		return append(b, "ah"...)
	case xfrmProtoComp:
		return append(b, "comp"...)
	}
	return strconv.AppendUint(append(b, "proto-"...), uint64(proto), 10)
}

// appendXfrmAddr appends xfrm_address_t a of family; an address of another
// family is "?".
func appendXfrmAddr(b []byte, family byte, a []byte) []byte {
	switch family {
	case afInet:
		return netip.AddrFrom4([4]byte(a[:4])).AppendTo(b)
	case afInet6:
		return netip.AddrFrom16([16]byte(a[:16])).AppendTo(b)
	}
	return append(b, '?')
}
