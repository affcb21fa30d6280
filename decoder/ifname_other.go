//go:build !linux

package decoder

// interfaceName names interfaces on Linux only.
func interfaceName(uint32) ([]byte, bool) { return nil, false }
