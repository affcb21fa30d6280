package netlinksrc

// Stats is a snapshot of a source's socket, read at scrape time.
type Stats struct {
	// Up is set while the source's socket is open and bound.
	Up bool
	// ReceiveBufferBytes is the receive buffer the kernel granted.
	ReceiveBufferBytes int
	// Overruns counts ENOBUFS errors: episodes in which the socket's
	// receive queue overflowed.
	Overruns uint64
	// Drops counts the messages the kernel dropped at the source's
	// sockets, over all the sockets it has had.
	Drops uint64
}
