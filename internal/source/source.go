// Package source makes what a configured source runs on: its decoder and
// its netlink subscription. The exporter and the monitor make them with the
// same two functions, so that the monitor receives and decodes exactly as
// the exporter does.
package source

import (
	"github.com/go-kit/log"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// NewDecoder makes the decoder a configured source names.
func NewDecoder(sc config.Source) (decoder.Decoder, error) {
	return decoder.New(sc.Decoder, decoder.Options{TypeNames: sc.EventNames, Genl: sc.Family != ""})
}

// NewSubscription makes the netlink subscription of a configured source,
// decoding with d.
func NewSubscription(sc config.Source, d decoder.Decoder, logger log.Logger) *netlinksrc.Subscription {
	// config.Parse refuses the values ParseSenders does not know; one
	// that got here anyway trusts only the kernel.
	senders, _ := srcinfo.ParseSenders(sc.Senders)
	return netlinksrc.New(netlinksrc.Config{
		Name:               sc.Name,
		Protocol:           int(sc.Protocol),
		Groups:             sc.Groups,
		Family:             sc.Family,
		GroupNames:         sc.GroupNames,
		ReceiveBufferBytes: sc.ReceiveBufferBytes,
		Senders:            senders,
		// The proc connector's subscription, rtnetlink's link dump.
		Requests: decoder.Requests(sc.Decoder),
	}, d, logger)
}
