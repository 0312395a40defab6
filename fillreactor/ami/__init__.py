"""The AMI side of the shell: talking to Asterisk servers through panoramisk.

``fast_protocol.FastAMIProtocol`` is the panoramisk protocol class to plug into
``panoramisk.Manager(protocol_factory=...)``: it frames and normalises the event firehose itself
and leaves actions and their responses to panoramisk.
"""
