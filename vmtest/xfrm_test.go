//go:build vmtest

package vmtest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

const xfrmConfig = `
sources:
  - {name: ipsec, protocol: xfrm, groups: [expire, sa, policy], decoder: xfrm}
`

// The modules a real ESP SA needs, in load order: run.sh copies them from
// Debian's kernel. The crypto API would modprobe authenc, echainiv and
// drbg (the default RNG, which echainiv seeds from; outside FIPS mode it
// does without the jitter entropy source), which the VM cannot.
var xfrmModules = []string{"xfrm_algo", "xfrm_user", "authenc", "echainiv", "drbg", "esp4"}

// XFRM requests and their structs (linux/xfrm.h).
const (
	xfrmMsgNewSA      = 0x10
	xfrmMsgDelSA      = 0x11
	xfrmaAlgCrypt     = 2 // XFRMA_ALG_CRYPT, struct xfrm_algo
	xfrmaAlgAuthTrunc = 20
	xfrmModeTunnel    = 1
	xfrmUsersaInfoLen = 224
)

// loadXfrmModules loads the modules that are not loaded yet; they stay.
func loadXfrmModules(t *testing.T) {
	t.Helper()
	for _, name := range xfrmModules {
		m := &module{name: name, path: filepath.Join(*moduleDir, name+".ko")}
		if m.loaded() {
			continue
		}
		if err := m.tryLoad(""); err != nil {
			t.Fatalf("%v (built in? run.sh copies the module when Debian's kernel has it)", err)
		}
	}
}

// xfrmRequest sends an XFRM request and returns the error its
// acknowledgement carries.
func xfrmRequest(typ uint16, payload []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_XFRM)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// The kernel's reason with its error, without the request echoed.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	m := nlsend.AppendMessage(nil, typ, 1, payload)
	binary.NativeEndian.PutUint16(m[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	if err := unix.Sendto(fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < 20 || binary.NativeEndian.Uint16(buf[4:6]) != unix.NLMSG_ERROR {
		return fmt.Errorf("reply of %d bytes, type %d, want an acknowledgement", n, binary.NativeEndian.Uint16(buf[4:6]))
	}
	if errno := int32(binary.NativeEndian.Uint32(buf[16:20])); errno != 0 {
		// struct nlmsgerr (error, the request's header), then
		// NLMSGERR_ATTR_MSG.
		for a := buf[36:n]; len(a) >= 4; {
			l := int(binary.NativeEndian.Uint16(a[0:2]))
			if l < 4 || l > len(a) {
				break
			}
			if binary.NativeEndian.Uint16(a[2:4]) == unix.NLMSGERR_ATTR_MSG {
				return fmt.Errorf("%w: %s", unix.Errno(-errno), strings.TrimRight(string(a[4:l]), "\x00"))
			}
			a = a[min(len(a), (l+3)&^3):]
		}
		return unix.Errno(-errno)
	}
	return nil
}

// espSA returns XFRM_MSG_NEWSA's payload for an ESP SA in tunnel mode from
// src to dst with spi and reqid, AES-CBC and HMAC-SHA256, which expires
// softly after soft and hard after hard seconds (0: never).
func espSA(src, dst netip.Addr, spi, reqid uint32, soft, hard uint64) []byte {
	p := make([]byte, xfrmUsersaInfoLen)
	// struct xfrm_selector: any traffic of the family.
	binary.NativeEndian.PutUint16(p[40:42], unix.AF_INET)
	d, s := dst.As4(), src.As4()
	copy(p[56:60], d[:])
	binary.BigEndian.PutUint32(p[72:76], spi)
	p[76] = unix.IPPROTO_ESP
	copy(p[80:84], s[:])
	// struct xfrm_lifetime_cfg: byte and packet limits none, then the
	// add-time limits.
	for i := 96; i < 128; i += 8 {
		binary.NativeEndian.PutUint64(p[i:], ^uint64(0))
	}
	binary.NativeEndian.PutUint64(p[128:], soft)
	binary.NativeEndian.PutUint64(p[136:], hard)
	binary.NativeEndian.PutUint32(p[208:212], reqid)
	binary.NativeEndian.PutUint16(p[212:214], unix.AF_INET)
	p[214] = xfrmModeTunnel
	algo := func(name string, keyBits int, trunc int) []byte {
		a := make([]byte, 64)
		copy(a, name)
		a = binary.NativeEndian.AppendUint32(a, uint32(keyBits))
		if trunc > 0 {
			a = binary.NativeEndian.AppendUint32(a, uint32(trunc))
		}
		key := make([]byte, keyBits/8)
		for i := range key {
			key[i] = byte(i + 1)
		}
		return append(a, key...)
	}
	p = nlsend.AppendAttr(p, xfrmaAlgCrypt, algo("cbc(aes)", 128, 0))
	return nlsend.AppendAttr(p, xfrmaAlgAuthTrunc, algo("hmac(sha256)", 256, 128))
}

// espSAID returns XFRM_MSG_DELSA's struct xfrm_usersa_id.
func espSAID(dst netip.Addr, spi uint32) []byte {
	p := make([]byte, 24)
	d := dst.As4()
	copy(p, d[:])
	binary.BigEndian.PutUint32(p[16:20], spi)
	binary.NativeEndian.PutUint16(p[20:22], unix.AF_INET)
	p[22] = unix.IPPROTO_ESP
	return p
}

// TestXfrmExpiries installs a real ESP SA with soft and hard time limits of
// 2 and 4 seconds: the exporter counts exactly one sa/new, one
// sa/soft_expire and one sa/hard_expire for its tunnel, "esp
// 10.7.0.1->10.7.0.2 reqid 42"; a second SA for the tunnel (a rekey: a new
// SPI) is counted about the same object, and its deletion too.
func TestXfrmExpiries(t *testing.T) {
	loadXfrmModules(t)
	e := startExporter(t, nil, xfrmConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "ipsec")

	src, dst := netip.MustParseAddr("10.7.0.1"), netip.MustParseAddr("10.7.0.2")
	const reqid, tunnel = 42, "esp 10.7.0.1->10.7.0.2 reqid 42"
	if err := xfrmRequest(xfrmMsgNewSA, espSA(src, dst, 0x1001, reqid, 2, 4)); err != nil {
		// The crypto algorithms the kernel has, and the modules, say
		// which one it could not find.
		crypto, _ := os.ReadFile("/proc/crypto")
		var names []string
		for _, l := range strings.Split(string(crypto), "\n") {
			if strings.HasPrefix(l, "name") {
				names = append(names, strings.TrimSpace(strings.TrimPrefix(l, "name")))
			}
		}
		mods, _ := os.ReadFile("/proc/modules")
		t.Fatalf("XFRM_MSG_NEWSA: %v\ncrypto: %s\nmodules:\n%s\ndmesg:\n%s", err, strings.Join(names, " "), mods, strings.Join(dmesgLines(t, "xfrm", "esp", "crypto", "alg"), "\n"))
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "ipsec", "event", "sa/hard_expire", "object", tunnel)
	mfs := e.Scrape(t)
	for _, ev := range []string{"sa/new", "sa/soft_expire", "sa/hard_expire"} {
		check(t, mfs, 1, "kevent_events_total", "source", "ipsec", "event", ev, "object", tunnel)
	}

	// The rekey's SA: a new SPI, the same tunnel.
	if err := xfrmRequest(xfrmMsgNewSA, espSA(src, dst, 0x2002, reqid, 0, 0)); err != nil {
		t.Fatalf("XFRM_MSG_NEWSA: %v", err)
	}
	e.WaitFor(t, 2, "kevent_events_total", "source", "ipsec", "event", "sa/new", "object", tunnel)
	check(t, e.Scrape(t), 0x2002, "kevent_event_last_value", "source", "ipsec", "event", "sa/new", "object", tunnel)
	if err := xfrmRequest(xfrmMsgDelSA, espSAID(dst, 0x2002)); err != nil {
		t.Fatalf("XFRM_MSG_DELSA: %v", err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "ipsec", "event", "sa/del", "object", tunnel)

	mfs = e.Scrape(t)
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "ipsec")
	for _, m := range mfs["kevent_events_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "object" && lp.GetValue() != tunnel {
				t.Errorf("an event about %q: every event is about the tunnel", lp.GetValue())
			}
		}
	}
}
