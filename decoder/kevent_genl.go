package decoder

// The kevent module's generic netlink family, as kmod/kevent_netlink.h
// defines it (KEVENT_GENL_*, enum kevent_cmd). A test checks these against
// the header.
//
// A message of the family is a netlink header whose type is the family's id
// (assigned at run time: resolve KeventGenlFamily with the generic netlink
// controller's CTRL_CMD_GETFAMILY), a generic netlink header whose command is
// KeventCmdEvent and version KeventGenlVersion, then the same attributes as
// the classic KeventMsgEvent message (KeventAttrSeq ... KeventAttrPad).
const (
	// KeventGenlFamily is the name of the family (KEVENT_GENL_NAME). The
	// family exists in the initial network namespace only.
	KeventGenlFamily = "kevent"
	// KeventGenlVersion is the family's version (KEVENT_GENL_VERSION), in
	// CTRL_ATTR_VERSION and in every message's generic netlink header.
	KeventGenlVersion = 1
	// KeventGenlGroup is the name of the multicast group every event is
	// sent to (KEVENT_GENL_MCGRP_EVENTS); its id is assigned at run time.
	KeventGenlGroup = "events"
	// KeventCmdEvent is the generic netlink command of an event message
	// (KEVENT_CMD_EVENT).
	KeventCmdEvent = 1
)
