package netlinksrc

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

const (
	// dropMonVersion is the NET_DM family's version (2), sent in the
	// commands' headers.
	dropMonVersion = 2
	// dropMonTruncLen is the packet bytes each packet alert carries: the
	// exporter reads none of them, and 0 would mean the whole packet.
	dropMonTruncLen = 1
	// dropMonTimeout bounds each command, as a scrape waits for STATS_GET.
	dropMonTimeout = 2 * time.Second
)

// dropMonOwner is this process's share of the kernel's one drop monitor:
// a source that starts while another of the process's sources runs the
// monitor it started (a reload that renames the source starts the new one
// before the old one stops) shares it instead of finding it busy, and the
// last one to stop stops it.
var dropMonOwner struct {
	sync.Mutex
	users  int
	family uint16
}

// DropMonitor is the Control of a drop monitor source (family NET_DM). At
// Start it configures the kernel's drop monitor (NET_DM_CMD_CONFIG: the
// alert mode, the packet bytes sent, the packet mode's queue length) and
// starts it (NET_DM_CMD_START); at Stop it stops the monitor, if it
// started it. A monitor that already runs (dropwatch, or an exporter that
// died without stopping it: START fails with EAGAIN or EBUSY) is listened
// to in the mode it runs in, logged, and left running. Its Stats read the
// kernel's count of alerts it could not queue (NET_DM_CMD_STATS_GET), from
// a baseline taken at Start: the count is cumulative since the module
// loaded.
type DropMonitor struct {
	mode     uint8
	queueLen uint32
	logger   log.Logger

	mu sync.Mutex
	// conn sends the commands, between Start and Stop.
	conn   *genetlink.Conn
	family uint16
	// owned is set when Start started the monitor.
	owned bool
	// base is the kernel's count at Start, last the last one read, and
	// lost what earlier Starts counted.
	base, last, lost uint64
}

// NewDropMonitor returns the Control of a drop monitor source: packets
// selects the packet mode, with a queue of queueLen packets per CPU, else
// the summary mode.
func NewDropMonitor(packets bool, queueLen uint32, logger log.Logger) *DropMonitor {
	d := &DropMonitor{mode: decoder.DropMonAlertModeSummary, queueLen: queueLen, logger: logger}
	if packets {
		d.mode = decoder.DropMonAlertModePacket
	}
	return d
}

// JoinDenied implements Control.
func (d *DropMonitor) JoinDenied() string {
	return "Not permitted to join the drop monitor's events group: the kernel asks for CAP_SYS_ADMIN (GENL_MCAST_CAP_SYS_ADMIN, since 6.5 and in the stable kernels)"
}

// Start implements Control.
func (d *DropMonitor) Start(family uint16) error {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return &ControlError{Msg: "Cannot open a socket for the drop monitor's commands", Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn, d.family = c, family
	if d.base, err = d.readDropped(); err != nil {
		d.closeLocked()
		return &ControlError{Msg: "Cannot read the drop monitor's statistics (NET_DM_CMD_STATS_GET)", Err: err}
	}
	d.last = d.base

	dropMonOwner.Lock()
	defer dropMonOwner.Unlock()
	if dropMonOwner.users > 0 && dropMonOwner.family == family {
		dropMonOwner.users++
		d.owned = true
		level.Info(d.logger).Log("msg", "Sharing the drop monitor another source of this exporter started")
		return nil
	}
	// CONFIG fails with EBUSY while the monitor runs: START says whether
	// its software part does.
	cfgErr := d.command(decoder.DropMonCmdConfig, func(ae *netlink.AttributeEncoder) {
		ae.Uint8(decoder.DropMonAttrAlertMode, d.mode)
		ae.Uint32(decoder.DropMonAttrTruncLen, dropMonTruncLen)
		ae.Uint32(decoder.DropMonAttrQueueLen, d.queueLen)
	})
	if errors.Is(cfgErr, unix.EPERM) {
		d.closeLocked()
		return &ControlError{Msg: "Not permitted to configure the drop monitor (NET_DM_CMD_CONFIG): it needs CAP_NET_ADMIN", Err: unix.EPERM}
	}
	err = d.command(decoder.DropMonCmdStart, nil)
	switch {
	case err == nil:
		d.owned = true
		dropMonOwner.users, dropMonOwner.family = 1, family
		kv := []any{"msg", "Started the kernel's drop monitor", "mode", d.runningMode()}
		if cfgErr != nil {
			// Hardware monitoring ran: the software part starts in the
			// mode it was configured in.
			kv = append(kv, "config_err", cfgErr)
		}
		level.Info(d.logger).Log(kv...)
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		d.owned = false
		level.Warn(d.logger).Log("msg", "The kernel's drop monitor already runs, started by another program (dropwatch, or an exporter that stopped without stopping it); listening in the mode it runs in, and leaving it running; see kevent_drop_monitor_owned",
			"mode", d.runningMode())
	case errors.Is(err, unix.EPERM):
		d.closeLocked()
		return &ControlError{Msg: "Not permitted to start the drop monitor (NET_DM_CMD_START): it needs CAP_NET_ADMIN", Err: unix.EPERM}
	default:
		d.closeLocked()
		return &ControlError{Msg: "Cannot start the drop monitor (NET_DM_CMD_START)", Err: err}
	}
	return nil
}

// Stop implements Control.
func (d *DropMonitor) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return
	}
	d.readLocked()
	d.lost += d.last - d.base
	if d.owned {
		// Held until STOP is done: a source that starts meanwhile would
		// find the monitor running and listen to one about to stop.
		dropMonOwner.Lock()
		dropMonOwner.users--
		if dropMonOwner.users == 0 {
			if err := d.command(decoder.DropMonCmdStop, nil); err != nil {
				level.Error(d.logger).Log("msg", "Cannot stop the kernel's drop monitor (NET_DM_CMD_STOP); it keeps running until something stops it", "err", err)
			} else {
				level.Info(d.logger).Log("msg", "Stopped the kernel's drop monitor")
			}
		}
		dropMonOwner.Unlock()
	}
	d.owned = false
	d.closeLocked()
}

// Stats implements Control.
func (d *DropMonitor) Stats() srcinfo.ControlStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return srcinfo.ControlStats{KernelLost: d.lost}
	}
	d.readLocked()
	return srcinfo.ControlStats{Active: true, Owned: d.owned, KernelLost: d.lost + d.last - d.base}
}

// readLocked reads the kernel's count into last; a failed read keeps the
// last one (the family may be gone).
func (d *DropMonitor) readLocked() {
	if n, err := d.readDropped(); err == nil && n >= d.base {
		d.last = n
	}
}

func (d *DropMonitor) closeLocked() {
	d.conn.Close()
	d.conn = nil
}

// readDropped returns the kernel's count of alerts it could not queue,
// software and hardware.
func (d *DropMonitor) readDropped() (uint64, error) {
	msgs, err := d.execute(decoder.DropMonCmdStatsGet, nil, netlink.Request)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return 0, err
		}
		for ad.Next() {
			switch ad.Type() {
			case decoder.DropMonAttrStats, decoder.DropMonAttrHWStats:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						if nad.Type() == decoder.DropMonAttrStatsDropped {
							n += nad.Uint64()
						}
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// runningMode asks the kernel which mode the monitor is configured in.
func (d *DropMonitor) runningMode() string {
	msgs, err := d.execute(decoder.DropMonCmdConfigGet, nil, netlink.Request)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == decoder.DropMonAttrAlertMode {
				switch v := ad.Uint8(); v {
				case decoder.DropMonAlertModeSummary:
					return "summary"
				case decoder.DropMonAlertModePacket:
					return "packets"
				default:
					return fmt.Sprint(v)
				}
			}
		}
	}
	return "unknown"
}

// command sends a command that has no reply and waits for its
// acknowledgement.
func (d *DropMonitor) command(cmd uint8, attrs func(*netlink.AttributeEncoder)) error {
	_, err := d.execute(cmd, attrs, netlink.Request|netlink.Acknowledge)
	return err
}

func (d *DropMonitor) execute(cmd uint8, attrs func(*netlink.AttributeEncoder), flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	m := genetlink.Message{Header: genetlink.Header{Command: cmd, Version: dropMonVersion}}
	if attrs != nil {
		ae := netlink.NewAttributeEncoder()
		attrs(ae)
		b, err := ae.Encode()
		if err != nil {
			return nil, err
		}
		m.Data = b
	}
	if err := d.conn.SetDeadline(time.Now().Add(dropMonTimeout)); err != nil {
		return nil, err
	}
	return d.conn.Execute(m, d.family, flags)
}
