package config_test

import (
	"fmt"

	"github.com/kevent-exporter/kevent_exporter/config"
)

// Parse checks a configuration strictly and fills in each source's
// defaults; a protocol or a group may be given by its name.
func ExampleParse() {
	c, err := config.Parse([]byte(`
sources:
  - name: links
    protocol: route
    groups: [link]
    decoder: rtnetlink
  - name: users
    protocol: usersock
    groups: [3, 1]
    decoder: raw
    event_names: {16: tick}
`))
	if err != nil {
		panic(err)
	}
	for _, s := range c.Sources {
		fmt.Printf("%s: protocol %d, groups %v, decoder %s, max_events %d, event_names %v\n",
			s.Name, s.Protocol, s.Groups, s.Decoder, s.MaxEvents, s.EventNames)
	}
	// Output:
	// links: protocol 0, groups [1], decoder rtnetlink, max_events 2000, event_names map[]
	// users: protocol 2, groups [1 3], decoder raw, max_events 2000, event_names map[16:tick]
}

// A configuration that cannot run is refused with an error that names the
// line or the source at fault.
func ExampleParse_error() {
	_, err := config.Parse([]byte(`
sources:
  - name: users
    protocol: usersock
    groups: [1, 33]
    decoder: raw
`))
	fmt.Println(err)
	// Output:
	// source "users": groups: group 33 out of range 1-32 for protocol usersock (2)
}
