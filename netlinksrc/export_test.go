package netlinksrc

// HandleForBenchmark puts datagram in s's read buffer and handles it, as
// the receive loop does after a read.
func HandleForBenchmark(s *Source, datagram []byte) {
	n := copy(s.buf, datagram)
	s.handle(n)
}
