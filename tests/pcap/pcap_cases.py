#!/usr/bin/python3
"""Packet-capture tests of the real dataplane: each case is "send this capture, expect that capture".

For one case this script builds the input frames and the frames the dataplane must send (scapy,
with checksums computed by scapy, independently of ilb), writes input.pcap and a TOML file into a
temporary directory, runs ilb-controlplane and then ilb-dataplane with a net_pcap port reading
input.pcap and writing output.pcap, waits until the dataplane has received every input frame and
accounted for each one (sent or dropped), stops it, and compares output.pcap frame by frame with
the expectation, and the drop counters with the reasons each case expects.

Usage: pcap_cases.py CASE [--keep] | --list | --self-check
Environment: ILB_BUILD_DIR (where the binaries are), ILB_SOURCE_DIR.
Run it with /usr/bin/python3: scapy is the Debian package.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Padding, Raw
from scapy.utils import hexdump

LB_MAC = "02:00:00:00:00:02"
CLIENT_MAC = "02:00:00:00:00:10"
CLIENT2_MAC = "02:00:00:00:00:11"
BACKEND_MAC = "02:00:00:00:00:21"
UDP_BACKEND_MAC = "02:00:00:00:00:22"
PORT_IP = "10.0.0.2"
CLIENT = "10.0.0.10"
CLIENT2 = "10.0.0.11"
VIP = "10.0.0.100"
SNAT = "10.0.0.101"
BACKEND = "10.0.0.21"
UDP_BACKEND = "10.0.0.22"
SNAT_PORT_MIN = 1024

STARTUP_DEADLINE_S = 60
DRAIN_DEADLINE_S = 30
EXIT_DEADLINE_S = 20


class Case:
    """Input frames, the frames expected out (in order), the drop counters expected, the reply
    counters (`ilbctl status`'s dataplane.replies) expected, `dataplane`: lines added to the
    config's [dataplane] section for this case, and `port`: lines added to its port's table."""

    def __init__(self, inputs, outputs, drops=None, notes=None, replies=None, dataplane="",
                 port=""):
        self.dataplane = dataplane
        self.port = port
        self.inputs = inputs
        self.outputs = outputs
        self.drops = drops or {}
        self.notes = notes or []
        self.replies = {"untracked_resets": 0, "icmp_errors_translated": 0, "limited": 0,
                        **(replies or {})}


def eth_in(src_mac=CLIENT_MAC, dst_mac=LB_MAC):
    return Ether(src=src_mac, dst=dst_mac)


def finalize(pkt):
    """Bytes of `pkt` with lengths and checksums computed by scapy (fields left unset)."""
    return bytes(pkt)


def rewritten(frame, eth_src, eth_dst, ip_src, sport, ip_dst, dport):
    """The frame a full-NAT balancer must send for `frame`: addresses, ports and MACs replaced,
    IP and L4 checksums recomputed from scratch by scapy, every other byte (TTL, IP id, TCP
    sequence numbers, options, payload, Ethernet padding) unchanged. Only the headers are
    dissected: the payload and padding are carried as raw bytes, so no application-layer
    dissector (scapy would decode port 53 as DNS) can re-encode them differently."""
    ihl = (frame[14] & 0x0F) * 4
    ip_end = 14 + struct.unpack("!H", frame[16:18])[0]
    l4 = 14 + ihl
    hdr_end = l4 + ((frame[l4 + 12] >> 4) * 4 if frame[23] == 6 else 8)
    p = Ether(frame[:hdr_end])
    p[Ether].src = eth_src
    p[Ether].dst = eth_dst
    p[IP].src = ip_src
    p[IP].dst = ip_dst
    del p[IP].chksum
    l4 = p[TCP] if TCP in p else p[UDP]
    l4.sport = sport
    l4.dport = dport
    if not (UDP in p and p[UDP].chksum == 0):  # "no checksum" stays so
        del l4.chksum
    if hdr_end < ip_end:
        l4.add_payload(Raw(frame[hdr_end:ip_end]))
    if ip_end < len(frame):
        p = p / Padding(frame[ip_end:])
    out = bytes(p)
    assert len(out) == len(frame) and out[hdr_end:] == frame[hdr_end:]
    return out


def to_backend(frame, snat_port, backend=BACKEND, backend_mac=BACKEND_MAC, backend_port=None):
    p = Ether(frame)
    l4 = p[TCP] if TCP in p else p[UDP]
    return rewritten(frame, LB_MAC, backend_mac, SNAT, snat_port, backend,
                     backend_port if backend_port is not None else l4.dport)


def to_client(frame, client, cport, client_mac, vport):
    return rewritten(frame, LB_MAC, client_mac, VIP, vport, client, cport)


SYN_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 0)), ("NOP", None),
               ("WScale", 7)]


def case_syn_to_vip():
    c, cp = CLIENT, 40000
    seq_c, seq_b = 1000, 5000
    req = b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n"
    resp = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def from_client(flags, seq, ack, payload=b"", options=None, pad=0):
        p = eth_in() / IP(src=c, dst=VIP, ttl=61, id=0x4242) / TCP(
            sport=cp, dport=80, flags=flags, seq=seq, ack=ack, window=64240,
            options=options or [])
        if payload:
            p = p / Raw(payload)
        if pad:
            p = p / Padding(b"\xa5" * pad)
        return finalize(p)

    def from_backend(flags, seq, ack, payload=b""):
        p = eth_in(BACKEND_MAC) / IP(src=BACKEND, dst=SNAT, ttl=64, id=0x1000) / TCP(
            sport=80, dport=SNAT_PORT_MIN, flags=flags, seq=seq, ack=ack, window=65160)
        if payload:
            p = p / Raw(payload)
        return finalize(p)

    inputs = [
        from_client("S", seq_c, 0, options=SYN_OPTIONS),
        from_backend("SA", seq_b, seq_c + 1),
        from_client("A", seq_c + 1, seq_b + 1, pad=6),  # padded to the Ethernet minimum
        from_client("PA", seq_c + 1, seq_b + 1, req),
        from_backend("A", seq_b + 1, seq_c + 1 + len(req)),
        from_backend("PA", seq_b + 1, seq_c + 1 + len(req), resp),
        from_client("FA", seq_c + 1 + len(req), seq_b + 1 + len(resp)),
        from_backend("FA", seq_b + 1 + len(resp), seq_c + 2 + len(req)),
        from_client("A", seq_c + 2 + len(req), seq_b + 2 + len(resp)),
    ]
    outputs = []
    for f in inputs:
        ip = Ether(f)[IP]
        if ip.src == c:
            outputs.append(to_backend(f, SNAT_PORT_MIN))
        else:
            outputs.append(to_client(f, c, cp, CLIENT_MAC, 80))
    # A second client's connection gets the next SNAT port.
    syn2 = finalize(eth_in(CLIENT2_MAC) / IP(src=CLIENT2, dst=VIP, ttl=64, id=7) /
                    TCP(sport=51000, dport=80, flags="S", seq=77, options=SYN_OPTIONS))
    synack2 = finalize(eth_in(BACKEND_MAC) / IP(src=BACKEND, dst=SNAT, ttl=64, id=8) /
                       TCP(sport=80, dport=SNAT_PORT_MIN + 1, flags="SA", seq=999, ack=78))
    inputs += [syn2, synack2]
    outputs += [to_backend(syn2, SNAT_PORT_MIN + 1), to_client(synack2, CLIENT2, 51000, CLIENT2_MAC, 80)]
    return Case(inputs, outputs)


def case_udp_flow():
    cp = 5353

    def query(payload, checksum=True):
        p = eth_in() / IP(src=CLIENT, dst=VIP, ttl=64, id=0x10) / UDP(sport=cp, dport=53) / Raw(payload)
        if not checksum:
            p[UDP].chksum = 0
        return finalize(p)

    def answer(payload):
        return finalize(eth_in(UDP_BACKEND_MAC) / IP(src=UDP_BACKEND, dst=SNAT, ttl=64, id=0x20) /
                        UDP(sport=5300, dport=SNAT_PORT_MIN) / Raw(payload))

    inputs = [query(b"\x12\x34 first query"), answer(b"\x12\x34 first answer, odd"),
              query(b"\x56\x78 second query, no checksum", checksum=False),
              answer(b"\x56\x78 second answer")]
    outputs = []
    for f in inputs:
        if Ether(f)[IP].src == CLIENT:
            outputs.append(to_backend(f, SNAT_PORT_MIN, UDP_BACKEND, UDP_BACKEND_MAC, 5300))
        else:
            outputs.append(to_client(f, CLIENT, cp, CLIENT_MAC, 53))
    assert Ether(outputs[2])[UDP].chksum == 0, "a datagram without checksum must stay without"
    return Case(inputs, outputs)


def arp_request(target, sender=CLIENT, sender_mac=CLIENT_MAC, pad=0):
    p = Ether(src=sender_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=sender_mac, psrc=sender, hwdst="00:00:00:00:00:00", pdst=target)
    if pad:
        p = p / Padding(b"\x00" * pad)
    return finalize(p)


def arp_reply(owned, requester=CLIENT, requester_mac=CLIENT_MAC, pad=0):
    p = Ether(src=LB_MAC, dst=requester_mac) / ARP(
        op=2, hwsrc=LB_MAC, psrc=owned, hwdst=requester_mac, pdst=requester)
    if pad:
        p = p / Padding(b"\x00" * pad)
    return finalize(p)


def case_arp_request_for_vip():
    # The request for an address ilb does not own comes first: by the time the last reply is out,
    # it has been handled (the main lcore answers in order), so a wrong reply to it would show.
    inputs = [arp_request("10.0.0.55"), arp_request(VIP, pad=18), arp_request(SNAT),
              arp_request(PORT_IP, CLIENT2, CLIENT2_MAC)]
    outputs = [arp_reply(VIP, pad=18), arp_reply(SNAT), arp_reply(PORT_IP, CLIENT2, CLIENT2_MAC)]
    return Case(inputs, outputs, notes=["the request for 10.0.0.55 gets no reply"])


def echo(src, dst, ident, seq, payload, src_mac=CLIENT_MAC, ttl=64, type_=8, eth_dst=LB_MAC):
    return finalize(Ether(src=src_mac, dst=eth_dst) / IP(src=src, dst=dst, ttl=ttl, id=0x77) /
                    ICMP(type=type_, id=ident, seq=seq) / Raw(payload))


def case_ping_vip():
    data = bytes(range(56))
    inputs = [echo(CLIENT, VIP, 0x1234, 1, data, ttl=50),
              echo(CLIENT2, SNAT, 0x99, 7, b"odd length", src_mac=CLIENT2_MAC),
              echo(CLIENT, PORT_IP, 0x1234, 2, data),
              echo(CLIENT, "10.0.0.55", 0x1234, 3, data),  # not ours
              # From senders no host can be: no reply (it would go to no host, or to ilb).
              echo("0.0.0.0", VIP, 0x1234, 4, data),
              echo(VIP, VIP, 0x1234, 5, data),
              echo(CLIENT, VIP, 0x1234, 6, data, src_mac="01:00:5e:00:00:01")]
    outputs = [echo(VIP, CLIENT, 0x1234, 1, data, src_mac=LB_MAC, eth_dst=CLIENT_MAC, type_=0),
               echo(SNAT, CLIENT2, 0x99, 7, b"odd length", src_mac=LB_MAC, eth_dst=CLIENT2_MAC,
                    type_=0),
               echo(PORT_IP, CLIENT, 0x1234, 2, data, src_mac=LB_MAC, eth_dst=CLIENT_MAC, type_=0)]
    return Case(inputs, outputs, drops={"unsupported": 1, "martian": 3})


def syn(dport=80, src=CLIENT, sport=40000, eth_dst=LB_MAC, **ip):
    return finalize(Ether(src=CLIENT_MAC, dst=eth_dst) / IP(src=src, dst=VIP, **ip) /
                    TCP(sport=sport, dport=dport, flags="S", seq=1))


def set16(b, off, v):
    b = bytearray(b)
    b[off:off + 2] = struct.pack("!H", v)
    return bytes(b)


def ones_sum(data, acc=0):
    if len(data) % 2:
        data += b"\0"
    for (w,) in struct.iter_unpack("!H", data):
        acc += w
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


def with_ip_checksum(frame):
    """`frame` with its IPv4 header checksum recomputed (over IHL bytes, IHL taken as >= 5)."""
    ihl = max(frame[14] & 0x0F, 5) * 4
    f = set16(frame, 24, 0)
    return set16(f, 24, ~ones_sum(f[14:14 + ihl]) & 0xFFFF)


def with_tcp_checksum(frame):
    """`frame` (IPv4 without options, TCP) with its TCP checksum recomputed."""
    total = struct.unpack("!H", frame[16:18])[0]
    f = set16(frame, 14 + 20 + 16, 0)
    seg = f[34:14 + total]
    acc = ones_sum(f[26:34]) + 6 + len(seg)
    return set16(f, 50, ~ones_sum(seg, acc) & 0xFFFF)


def edited(frame, off, value):
    b = bytearray(frame)
    b[off] = value
    return bytes(b)


def case_malformed():
    good = syn()
    udp = finalize(eth_in() / IP(src=CLIENT, dst=VIP) / UDP(sport=5353, dport=53) / Raw(b"q" * 10))
    variants = [
        ("bad_ip_checksum", set16(good, 24, Ether(good)[IP].chksum ^ 0x0100), "bad_ip_checksum"),
        ("truncated_ip_header", good[:14 + 12], "truncated"),
        ("truncated_segment", good[:-4], "truncated"),
        ("bad_tcp_checksum", set16(good, 50, Ether(good)[TCP].chksum ^ 0x0001), "bad_l4_checksum"),
        ("bad_udp_checksum", edited(udp, len(udp) - 1, udp[-1] ^ 0x20), "bad_l4_checksum"),
        ("fragment_mf", syn(flags="MF", id=1), "fragment"),
        ("fragment_offset", syn(frag=64, id=1), "fragment"),
        ("ihl_below_5", with_ip_checksum(edited(good, 14, 0x44)), "bad_ip_header"),
        ("ip_version_6", with_ip_checksum(edited(good, 14, 0x65)), "bad_ip_header"),
        ("udp_length_beyond_datagram", finalize(eth_in() / IP(src=CLIENT, dst=VIP) /
                                                UDP(sport=5353, dport=53, len=200) / Raw(b"q" * 10)),
         "bad_ip_header"),
        ("tcp_data_offset_4", with_tcp_checksum(edited(good, 14 + 20 + 12, 0x40)), "bad_ip_header"),
        ("ipv6_ethertype",
         finalize(Ether(src=CLIENT_MAC, dst=LB_MAC, type=0x86DD) / Raw(b"\x60" + b"\0" * 59)),
         "unsupported"),
        ("gre", finalize(eth_in() / IP(src=CLIENT, dst=VIP, proto=47) / Raw(b"\0" * 24)),
         "unsupported"),
    ]
    drops = {}
    for _, _, reason in variants:
        drops[reason] = drops.get(reason, 0) + 1
    return Case([f for _, f, _ in variants], [], drops,
                notes=[f"input {i} {n}: expected drop {r}" for i, (n, _, r) in enumerate(variants)])


def case_non_syn_miss():
    ack = finalize(eth_in() / IP(src=CLIENT, dst=VIP) / TCP(sport=40000, dport=80, flags="A",
                                                             seq=5, ack=9))
    data = finalize(eth_in() / IP(src=CLIENT, dst=VIP) / TCP(sport=40001, dport=80, flags="PA",
                                                              seq=5, ack=9) / Raw(b"x"))
    from_backend = finalize(eth_in(BACKEND_MAC) / IP(src=BACKEND, dst=SNAT) /
                            TCP(sport=80, dport=SNAT_PORT_MIN, flags="SA", seq=1, ack=2))
    return Case([ack, data, from_backend], [], {"non_syn_miss": 3})


def case_untracked_reset():
    """A service with untracked_tcp = "reset" answers TCP segments of no tracked connection the
    way a closed port does (RFC 9293, 3.10.7.1), from the VIP: a segment with an ACK gets RST
    with that ACK number as its sequence number; one without gets RST|ACK acknowledging its
    payload, SYN and FIN. A reset is not answered. A backend's segment to a SNAT port that no
    connection holds gets the same from the SNAT address when the backend is one of such a
    service's (not when it is only a backend of a service that drops)."""
    def seg(sport, flags, seq, ack, payload=b""):
        p = eth_in() / IP(src=CLIENT, dst=VIP) / TCP(sport=sport, dport=83, flags=flags, seq=seq,
                                                       ack=ack)
        return finalize(p / Raw(payload) if payload else p)

    def rst(dport, flags, seq, ack, src=VIP, sport=83, dst=CLIENT, dst_mac=CLIENT_MAC):
        frame = bytes(Ether(src=LB_MAC, dst=dst_mac) /
                      IP(src=src, dst=dst, ttl=64, id=0, flags="DF") /
                      TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=0))
        return frame + b"\0" * (60 - len(frame))

    def from_backend(sport):
        return finalize(eth_in(BACKEND_MAC) / IP(src=BACKEND, dst=SNAT) /
                        TCP(sport=sport, dport=SNAT_PORT_MIN, flags="PA", seq=1, ack=2) /
                        Raw(b"late"))

    inputs = [
        seg(40000, "A", 5, 9),
        seg(40001, "PA", 5, 0xFFFFFFFF, b"query"),
        seg(40002, "F", 0xFFFFFFFE, 0, b"xy"),  # the acknowledgment wraps past 2^32
        seg(40003, "RA", 5, 9),
        from_backend(8083),  # a backend of "strict"
        from_backend(80),  # a backend of "web" only
    ]
    outputs = [
        rst(40000, "R", 9, 0),
        rst(40001, "R", 0xFFFFFFFF, 0),
        rst(40002, "RA", 0, 1),
        rst(8083, "R", 2, 0, src=SNAT, sport=SNAT_PORT_MIN, dst=BACKEND, dst_mac=BACKEND_MAC),
    ]
    return Case(inputs, outputs, {"non_syn_miss": 6}, replies={"untracked_resets": 4})


def case_wrong_dst_mac():
    return Case([syn(eth_dst="02:00:00:00:00:99"), syn(eth_dst="01:00:5e:00:00:01", sport=40001)],
                [], {"not_for_us": 2})


def case_unknown_service_port():
    tcp81 = syn(dport=81)
    tcp53 = syn(dport=53, sport=40001)  # 53 is a UDP service only
    udp54 = finalize(eth_in() / IP(src=CLIENT, dst=VIP) / UDP(sport=5353, dport=54) / Raw(b"q"))
    return Case([tcp81, tcp53, udp54], [], {"no_service": 3})


def case_reject_without_backend():
    """A service with no eligible backend refuses new flows the way a host without a listener
    does: RST|ACK to a SYN, ICMP port unreachable to a datagram, each from the VIP."""
    syn82 = syn(dport=82)
    rst = bytes(Ether(src=LB_MAC, dst=CLIENT_MAC) /
                IP(src=VIP, dst=CLIENT, ttl=64, id=0, flags="DF") /
                TCP(sport=82, dport=40000, flags="RA", seq=0, ack=2, window=0))
    rst += b"\0" * (60 - len(rst))
    udp55 = finalize(eth_in() / IP(src=CLIENT, dst=VIP) / UDP(sport=5353, dport=55) / Raw(b"q"))
    unreachable = bytes(Ether(src=LB_MAC, dst=CLIENT_MAC) /
                        IP(src=VIP, dst=CLIENT, ttl=64, id=0, flags="DF") /
                        ICMP(type=3, code=3) / Raw(udp55[14:14 + 28]))
    return Case([syn82, udp55], [rst, unreachable], {"no_backend": 2})


def case_replies_over_the_limit():
    """With reply_rate_limit = 1 (bursts of one), only the first of the refusals ilb would make
    up goes out; the next SYN's and the datagram's are not sent, and are counted."""
    first = case_reject_without_backend()
    syn82, udp55 = first.inputs
    return Case([syn82, syn(sport=40001, dport=82), udp55], [first.outputs[0]],
                {"no_backend": 3}, replies={"limited": 2}, dataplane="reply_rate_limit = 1")


def datagram(frame):
    """The IPv4 datagram of an Ethernet frame: no Ethernet header, no padding."""
    return frame[14:14 + struct.unpack("!H", frame[16:18])[0]]


def case_icmp_errors():
    """ICMP errors about a tracked connection reach its other side quoting that side's own
    datagram, every byte of it (checksums included): fragmentation needed on the backend's path
    reaches the client, as path-MTU discovery needs; an unreachable on the client's path reaches
    the backend. The outer header keeps its TTL and id; type, code and MTU are kept. Errors from
    martian senders are not sent on."""
    router = "10.0.0.1"
    s = syn()
    fwd = to_backend(s, SNAT_PORT_MIN)
    synack = finalize(eth_in(BACKEND_MAC) / IP(src=BACKEND, dst=SNAT, ttl=64, id=0x1000) /
                      TCP(sport=80, dport=SNAT_PORT_MIN, flags="SA", seq=5000, ack=2))
    back = to_client(synack, CLIENT, 40000, CLIENT_MAC, 80)

    def icmp(eth_src, dst, type_, code, mtu, quote, ttl=250, ident=0x77, src=router):
        return finalize(Ether(src=eth_src, dst=LB_MAC) /
                        IP(src=src, dst=dst, ttl=ttl, id=ident) /
                        ICMP(type=type_, code=code, nexthopmtu=mtu) / Raw(quote))

    def out(eth_dst, src, dst, type_, code, mtu, quote, ttl=250, ident=0x77):
        return bytes(Ether(src=LB_MAC, dst=eth_dst) / IP(src=src, dst=dst, ttl=ttl, id=ident) /
                     ICMP(type=type_, code=code, nexthopmtu=mtu) / Raw(quote))

    # The SYN-ACK need not pass: the connection exists from the SYN on, and a worker handles a
    # burst's ICMP errors after its TCP and UDP packets (the errors are about earlier packets).
    inputs = [
        s,
        icmp(BACKEND_MAC, SNAT, 3, 4, 1400, datagram(fwd)),
        icmp(CLIENT_MAC, VIP, 3, 1, 0, datagram(back)),
        # an error about a flow ilb does not track: counted and dropped
        icmp(BACKEND_MAC, SNAT, 3, 4, 1400, datagram(to_backend(syn(sport=40999), 1100))),
        # from senders no router can be (loopback; ilb's own VIP): martians, not sent on
        icmp(BACKEND_MAC, SNAT, 3, 4, 576, datagram(fwd), src="127.0.0.1"),
        icmp(CLIENT_MAC, VIP, 3, 4, 576, datagram(back), src=VIP),
    ]
    outputs = [
        fwd,
        out(CLIENT_MAC, VIP, CLIENT, 3, 4, 1400, datagram(s)),
        out(BACKEND_MAC, SNAT, BACKEND, 3, 1, 0, datagram(synack)),
    ]
    return Case(inputs, outputs, {"unsupported": 1, "martian": 2},
                replies={"icmp_errors_translated": 2})


def case_port_mtu():
    """A port with mtu = 1400: the client's and the backend's SYNs offer larger segments (a
    jumbo-frame host, a 1500-byte one) and go on offering 1360, every other byte as a full NAT
    rewrite leaves it; an MSS that fits is left alone. A segment too long for the port gets,
    with DF, an ICMP "fragmentation needed" carrying 1400 from the VIP; without DF it is dropped;
    one of exactly 1400 bytes goes through."""
    cp = 40000

    def from_client(flags, seq, ack, payload=b"", mss=None, df=True, sport=cp):
        opts = [("MSS", mss), ("SAckOK", b""), ("NOP", None), ("WScale", 7)] if mss else []
        return finalize(eth_in() / IP(src=CLIENT, dst=VIP, ttl=61, id=0x4242,
                                      flags="DF" if df else 0) /
                        TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack, window=64240,
                            options=opts) / Raw(payload))

    def from_backend(flags, seq, ack, mss):
        return finalize(eth_in(BACKEND_MAC) / IP(src=BACKEND, dst=SNAT, ttl=64, id=0x1000) /
                        TCP(sport=80, dport=SNAT_PORT_MIN, flags=flags, seq=seq, ack=ack,
                            window=65160, options=[("MSS", mss), ("NOP", None), ("WScale", 7)]))

    syn_in = from_client("S", 1000, 0, mss=8960)
    synack_in = from_backend("SA", 5000, 1001, 1460)
    big = from_client("PA", 1001, 5001, b"x" * (1400 - 40 + 1))  # 1401 bytes of IPv4
    big_no_df = from_client("PA", 1001, 5001, b"y" * 1500, df=False)
    fits = from_client("PA", 1001, 5001, b"z" * (1400 - 40))
    small_mss = from_client("S", 9000, 0, mss=1200, sport=40001)
    inputs = [syn_in, synack_in, big, big_no_df, fits, small_mss]
    too_big = bytes(Ether(src=LB_MAC, dst=CLIENT_MAC) /
                    IP(src=VIP, dst=CLIENT, ttl=64, id=0, flags="DF") /
                    ICMP(type=3, code=4, nexthopmtu=1400) / Raw(datagram(big)[:28]))
    outputs = [
        to_backend(from_client("S", 1000, 0, mss=1360), SNAT_PORT_MIN),
        to_client(from_backend("SA", 5000, 1001, 1360), CLIENT, cp, CLIENT_MAC, 80),
        too_big,
        to_backend(fits, SNAT_PORT_MIN),
        to_backend(small_mss, SNAT_PORT_MIN + 1),
    ]
    return Case(inputs, outputs, {"too_big": 2}, port="mtu = 1400")


CASES = {
    "syn_to_vip": case_syn_to_vip,
    "port_mtu": case_port_mtu,
    "icmp_errors": case_icmp_errors,
    "reject_without_backend": case_reject_without_backend,
    "replies_over_the_limit": case_replies_over_the_limit,
    "udp_flow": case_udp_flow,
    "arp_request_for_vip": case_arp_request_for_vip,
    "ping_vip": case_ping_vip,
    "malformed": case_malformed,
    "non_syn_miss": case_non_syn_miss,
    "untracked_reset": case_untracked_reset,
    "wrong_dst_mac": case_wrong_dst_mac,
    "unknown_service_port": case_unknown_service_port,
}

# ---- pcap files (written and read here, so the bytes are exactly those intended) -------------


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000, i, len(frame), len(frame)))
            f.write(frame)


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: {len(data)} bytes, not a pcap file")
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        endian = ">"
    else:
        raise ValueError(f"{path}: bad pcap magic {magic:#x}")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet")
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, caplen, wirelen = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        frames.append(data[off:off + caplen])
        if caplen != wirelen:
            raise ValueError(f"{path}: frame {len(frames)} captured {caplen} of {wirelen} bytes")
        off += caplen
    if off != len(data):
        raise ValueError(f"{path}: {len(data) - off} trailing bytes")
    return frames


# ---- running the daemons ---------------------------------------------------------------------


def find_binary(build_dir, rel):
    path = os.path.join(build_dir, rel)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def config_text(instance, tmp, in_pcap, out_pcap, dataplane_extra="", port_extra=""):
    return f"""instance = "{instance}"

[controlplane]
api_socket = "{tmp}/api.sock"
state_file = "{tmp}/ilb.state"
log_level = "info"

[dataplane]
main_lcore = 0
worker_lcores = [1]
no_huge = true
memory_mb = 256
file_prefix = "{instance}"
conn_capacity = 1024
snat_addresses = ["{SNAT}"]
snat_port_min = {SNAT_PORT_MIN}
{dataplane_extra}
static_neighbours = [
  {{ address = "{BACKEND}", mac = "{BACKEND_MAC}" }},
  {{ address = "{UDP_BACKEND}", mac = "{UDP_BACKEND_MAC}" }},
]

[[dataplane.port]]
name = "lan"
device = "net_pcap0,rx_pcap={in_pcap},tx_pcap={out_pcap}"
address = "{PORT_IP}/24"
mac = "{LB_MAC}"
{port_extra}

[[service]]
name = "web"
vip = "{VIP}"
port = 80
protocol = "tcp"

[service.health_check]
type = "none"

[[service.backend]]
address = "{BACKEND}"
port = 80
weight = 100

[[service]]
name = "dns"
vip = "{VIP}"
port = 53
protocol = "udp"

[service.health_check]
type = "none"

[[service.backend]]
address = "{UDP_BACKEND}"
port = 5300
weight = 100

# Untracked TCP segments are answered with a reset, on both sides.
[[service]]
name = "strict"
vip = "{VIP}"
port = 83
untracked_tcp = "reset"

[service.health_check]
type = "none"

[[service.backend]]
address = "{BACKEND}"
port = 8083

# Services whose only backend has weight 0: nothing is eligible, new flows are refused.
[[service]]
name = "empty"
vip = "{VIP}"
port = 82

[service.health_check]
type = "none"

[[service.backend]]
address = "{BACKEND}"
weight = 0

[[service]]
name = "empty-udp"
vip = "{VIP}"
port = 55
protocol = "udp"

[service.health_check]
type = "none"

[[service.backend]]
address = "{UDP_BACKEND}"
weight = 0
"""


def http_get_unix(sock_path, target):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(sock_path)
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: ilb\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"GET {target}: {head.splitlines()[0] if head else raw!r}")
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return json.loads(body)


class Status:
    def __init__(self, ilbctl, sock):
        self.ilbctl = ilbctl
        self.sock = sock

    def get(self):
        if self.ilbctl:
            r = subprocess.run([self.ilbctl, "--socket", self.sock, "--json", "status"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                raise RuntimeError(f"ilbctl status: {r.stderr.strip() or r.stdout.strip()}")
            return json.loads(r.stdout)
        return http_get_unix(self.sock, "/v1/status")


def worker(dp):
    ws = [lc for lc in dp.get("lcores", []) if lc.get("worker")]
    return ws[0] if ws else None


def wait_for(what, deadline_s, fn, procs):
    """Polls fn() until it returns a true value; fails if the deadline passes or a daemon exits."""
    end = time.monotonic() + deadline_s
    last_err = None
    while time.monotonic() < end:
        for name, p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with status {p.returncode} while waiting for {what}")
        try:
            v = fn()
            if v:
                return v
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            last_err = e
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {deadline_s}s waiting for {what}"
                       + (f" (last error: {last_err})" if last_err else ""))


def stop(name, p, log):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=EXIT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        log(f"{name} did not exit {EXIT_DEADLINE_S}s after SIGTERM: killing it")
        p.kill()
        p.wait()


def cleanup_instance(instance):
    for name in (f"ilb.{instance}.ctl", f"ilb.{instance}.stat"):
        try:
            os.unlink(os.path.join("/dev/shm", name))
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join("/var/run/dpdk", instance), ignore_errors=True)


# ---- comparison ------------------------------------------------------------------------------


def describe(frame):
    return Ether(frame).show(dump=True) + hexdump(frame, dump=True)


def diff_bytes(want, got):
    lines = []
    for i in range(max(len(want), len(got))):
        w = f"{want[i]:02x}" if i < len(want) else "--"
        g = f"{got[i]:02x}" if i < len(got) else "--"
        if w != g:
            lines.append(f"  byte {i:4d}: want {w} got {g}")
    return "\n".join(lines[:64]) + ("\n  ..." if len(lines) > 64 else "")


def compare(case_name, want_frames, got_frames):
    errors = []
    for i in range(max(len(want_frames), len(got_frames))):
        want = want_frames[i] if i < len(want_frames) else None
        got = got_frames[i] if i < len(got_frames) else None
        if want == got:
            continue
        msg = [f"{case_name}: output frame {i} differs"]
        if want is None:
            msg.append("unexpected extra frame:\n" + describe(got))
        elif got is None:
            msg.append("missing frame; expected:\n" + describe(want))
        else:
            msg.append("byte differences:\n" + diff_bytes(want, got))
            msg.append("expected:\n" + describe(want))
            msg.append("got:\n" + describe(got))
        errors.append("\n".join(msg))
    return errors


def self_check():
    """Checks the generator itself: every expected frame and every input frame meant to be valid
    carries the checksums scapy computes for it, and each malformed input is malformed only in
    the stated way (its other checksums are valid)."""
    bad = 0

    def checksums_valid(f):
        q = Ether(f)
        for layer in (IP, TCP, UDP, ICMP):
            if layer in q and not (layer is UDP and q[UDP].chksum == 0):
                del q[layer].chksum
        return bytes(q) == bytes(Ether(f))

    for name, make in CASES.items():
        case = make()
        frames = case.outputs + ([] if name == "malformed" else case.inputs)
        case_bad = [i for i, f in enumerate(frames) if not checksums_valid(f)]
        for i in case_bad:
            print(f"{name}: frame {i} has a wrong checksum:\n{describe(frames[i])}")
        bad += len(case_bad)
        print(f"{name}: {len(case.inputs)} in, {len(case.outputs)} out, drops {case.drops}: "
              f"generator {'ok' if not case_bad else 'BROKEN'}")
    m = case_malformed()
    for f, note in zip(m.inputs, m.notes):
        if "checksum" in note or "truncated" in note or len(f) < 34 or f[12:14] != b"\x08\x00":
            continue
        if f[14] & 0x0F >= 5 and ones_sum(f[14:14 + (f[14] & 0x0F) * 4]) != 0xFFFF:
            bad += 1
            print(f"malformed {note}: its IP checksum should be valid")
        if "data_offset" in note and with_tcp_checksum(f) != f:
            bad += 1
            print(f"malformed {note}: its TCP checksum should be valid")
    return 0 if bad == 0 else 1


def run_case(name, keep):
    build_dir = os.environ.get("ILB_BUILD_DIR")
    if not build_dir:
        print("ILB_BUILD_DIR is not set", file=sys.stderr)
        return 1
    dataplane = find_binary(build_dir, "dataplane/ilb-dataplane")
    controlplane = find_binary(build_dir, "controlplane/ilb-controlplane")
    ilbctl = find_binary(build_dir, "tools/ilbctl/ilbctl")
    missing = [n for n, b in (("dataplane/ilb-dataplane", dataplane),
                              ("controlplane/ilb-controlplane", controlplane)) if b is None]
    if missing:
        print(f"missing binaries in {build_dir}: {', '.join(missing)}", file=sys.stderr)
        return 1

    case = CASES[name]()
    tmp = tempfile.mkdtemp(prefix=f"ilb-pcap-{name}-")
    instance = f"pcap{os.getpid()}"
    in_pcap, out_pcap = os.path.join(tmp, "input.pcap"), os.path.join(tmp, "output.pcap")
    write_pcap(in_pcap, case.inputs)
    write_pcap(os.path.join(tmp, "expected.pcap"), case.outputs)
    cfg_path = os.path.join(tmp, "ilb.toml")
    with open(cfg_path, "w") as f:
        f.write(config_text(instance, tmp, in_pcap, out_pcap, case.dataplane, case.port))

    def log(msg):
        print(f"[{name}] {msg}", flush=True)

    log(f"work dir {tmp}; {len(case.inputs)} input frames, {len(case.outputs)} expected out")
    cp = dp = None
    cp_log = open(os.path.join(tmp, "controlplane.log"), "w")
    dp_log = open(os.path.join(tmp, "dataplane.log"), "w")
    errors = []
    try:
        cleanup_instance(instance)
        cp = subprocess.Popen([controlplane, "--config", cfg_path], stdout=cp_log,
                              stderr=subprocess.STDOUT)
        sock = os.path.join(tmp, "api.sock")
        status = Status(ilbctl, sock)
        wait_for("the control plane's API socket", STARTUP_DEADLINE_S,
                 lambda: os.path.exists(sock) and status.get(), [("ilb-controlplane", cp)])
        dp = subprocess.Popen([dataplane, "--config", cfg_path, "--no-huge"], stdout=dp_log,
                              stderr=subprocess.STDOUT)
        procs = [("ilb-controlplane", cp), ("ilb-dataplane", dp)]
        n_in = len(case.inputs)

        def received_all():
            d = status.get().get("dataplane", {})
            w = worker(d)
            return d.get("applied_gen", 0) > 0 and w is not None and w["rx_packets"] >= n_in and d

        d = wait_for(f"the dataplane to apply a snapshot and receive {n_in} frames",
                     STARTUP_DEADLINE_S, received_all, procs)

        def accounted():
            d = status.get()["dataplane"]
            w = worker(d)
            done = w["tx_packets"] >= len(case.outputs) and all(
                d["drops"].get(r, 0) >= n for r, n in case.drops.items())
            return d if done else None

        try:
            d = wait_for("every frame to be sent or dropped", DRAIN_DEADLINE_S, accounted, procs)
        except TimeoutError as e:
            errors.append(str(e))
            d = status.get()["dataplane"]
        w = worker(d)
        if w["rx_packets"] != n_in:
            errors.append(f"worker received {w['rx_packets']} frames, the input has {n_in}")
        nonzero = {k: v for k, v in d["drops"].items() if v}
        if nonzero != case.drops:
            errors.append(f"drop counters {nonzero}, expected {case.drops}")
        replies = {k: d.get("replies", {}).get(k) for k in case.replies}
        if replies != case.replies:
            errors.append(f"reply counters {replies}, expected {case.replies}")
        log(f"worker rx {w['rx_packets']} tx {w['tx_packets']}, drops {nonzero}")

        stop("ilb-dataplane", dp, log)
        if dp.returncode != 0:
            errors.append(f"ilb-dataplane exited with status {dp.returncode} after SIGTERM")
        got = read_pcap(out_pcap)
        errors += compare(name, case.outputs, got)
    except Exception as e:  # noqa: BLE001 - any failure is reported with the logs below
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        stop("ilb-dataplane", dp, log)
        stop("ilb-controlplane", cp, log)
        cp_log.close()
        dp_log.close()
        cleanup_instance(instance)
    if cp is not None and cp.returncode != 0:
        errors.append(f"ilb-controlplane exited with status {cp.returncode} after SIGTERM")
    # Sanitizer builds report and continue (UBSan) or report at exit: either is a failure.
    for logname in ("dataplane.log", "controlplane.log"):
        with open(os.path.join(tmp, logname)) as f:
            for line in f:
                if "runtime error:" in line or "Sanitizer" in line:
                    errors.append(f"{logname}: {line.strip()}")
    ok = not errors
    if not ok:
        for e in errors:
            print(f"FAIL {e}", flush=True)
        for n in case.notes:
            log(f"note: {n}")
        for logname in ("dataplane.log", "controlplane.log"):
            with open(os.path.join(tmp, logname)) as f:
                text = f.read()
            print(f"---- {logname} (last 40 lines) ----\n" + "\n".join(text.splitlines()[-40:]))
    if ok and not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        log(f"files kept in {tmp}")
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", nargs="?", choices=sorted(CASES))
    ap.add_argument("--list", action="store_true", help="print the case names")
    ap.add_argument("--self-check", action="store_true", help="validate the generator only")
    ap.add_argument("--keep", action="store_true", help="keep the work directory on success")
    args = ap.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if args.self_check:
        return self_check()
    if not args.case:
        ap.error("a case name is required")
    return run_case(args.case, args.keep)


if __name__ == "__main__":
    sys.exit(main())
