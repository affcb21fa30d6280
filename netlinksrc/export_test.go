package netlinksrc

// HandleForBenchmark puts datagram in s's first receive slot and handles it,
// as the receive loop does after a read.
func HandleForBenchmark(s *Subscription, sink Sink, datagram []byte) {
	s.sink = sink
	s.batch.msgs[0].Len = uint32(copy(s.batch.buf, datagram))
	s.batch.msgs[0].Hdr.Flags = 0
	s.batch.msgs[0].Hdr.Namelen = 0
	s.handle(1)
}
