"""Tools around the phone channel: the local call simulator (`gateway simulate-call`)."""
