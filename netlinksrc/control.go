package netlinksrc

import (
	"errors"
	"time"

	"github.com/kevent-exporter/kevent_exporter/internal/ratelimit"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"

	"github.com/go-kit/log/level"
)

// controlRetryInterval is how often a family subscription whose Control
// failed to start tries again, the family unchanged: privileges are
// granted without the family changing.
const controlRetryInterval = 30 * time.Second

// A Control drives the kernel side of a family source: it asks the kernel
// to send the events (the drop monitor's START) once the source's socket
// is joined, tells it to stop when the socket closes, and reports what the
// kernel counted of the events it could not send.
type Control interface {
	// Start is called with the family's id once the socket joined the
	// family's groups, before anything is received. An error (a
	// *ControlError) leaves the source down: its socket is closed, and
	// Start is tried again when the family changes or after a while.
	Start(family uint16) error
	// Stop is called when the socket of a successful Start closed.
	Stop()
	// Stats reports what the control counts, read at scrape time.
	Stats() srcinfo.ControlStats
	// JoinDenied says what the kernel wants of a socket to join the
	// family's groups, for when it refuses (EPERM).
	JoinDenied() string
}

// A ControlError says why a Control could not start.
type ControlError struct {
	// Msg says what failed and what it needs, for the log.
	Msg string
	Err error
}

func (e *ControlError) Error() string { return e.Msg + ": " + e.Err.Error() }

func (e *ControlError) Unwrap() error { return e.Err }

// startControl starts the subscription's Control, if it has one, on the
// family id. On failure it logs why and returns a channel that fires when
// to try again.
func (s *Subscription) startControl(id uint16) (retry <-chan time.Time, err error) {
	if s.cfg.Control == nil {
		return nil, nil
	}
	if err = s.cfg.Control.Start(id); err == nil {
		return nil, nil
	}
	if denied(err) {
		s.setState(srcinfo.StateDenied)
	} else {
		s.setState(srcinfo.StateFailed)
	}
	if q, ok := s.openErrors.Allow(); ok {
		msg := "Cannot start the family's events; source down"
		var ce *ControlError
		if errors.As(err, &ce) {
			msg = ce.Msg + "; source down"
			err = ce.Err
		}
		level.Error(s.logger).Log(ratelimit.Quieted(q, "msg", msg, "err", err, "retry_in", controlRetryInterval)...)
	}
	return time.After(controlRetryInterval), err
}

// joinDenied names what the kernel wants of a socket to join the family's
// groups.
func (s *Subscription) joinDenied(err error) string {
	if s.cfg.Control != nil && denied(err) {
		return s.cfg.Control.JoinDenied()
	}
	return "Not permitted to join the family's multicast groups: they are flagged for CAP_NET_ADMIN (GENL_UNS_ADMIN_PERM) or CAP_SYS_ADMIN (GENL_ADMIN_PERM)"
}
