-- A pktgen-dpdk profile for measuring ilb on bare metal, for labs already driven by pktgen-dpdk
-- (https://github.com/pktgen/Pktgen-DPDK). Load it with `pktgen ... -- -P -m "[1:2].0,[3:4].1"
-- -f tools/ilb-pktgen/ilb.lua`.
--
-- pktgen-dpdk only generates and counts: it cannot answer as a backend, so it cannot complete a
-- TCP handshake, and ilb drops TCP packets that are not part of a connection. The profile
-- therefore measures one direction of a UDP service, where every datagram of a new 5-tuple
-- creates a connection:
--
--   pktgen port 0 (clients) --> ilb (VIP:VPORT, full NAT) --> pktgen port 1 (the backends)
--
-- Port 0 sends UDP datagrams to the VIP from a range of client addresses and ports, so ilb sees
-- CLIENT_IPS x CLIENT_PORTS flows. ilb must send what it forwards to port 1: give it the backends
-- as static neighbours with port 1's MAC address, for example
--
--   [dataplane]
--   static_neighbours = [{ address = "10.0.1.1", mac = "<pktgen port 1 MAC>" }]
--
--   [[service]]
--   name = "udp-bench"
--   vip = "10.0.0.100"
--   port = 53
--   protocol = "udp"
--   [service.health_check]
--   type = "none"
--   [[service.backend]]
--   address = "10.0.1.1"
--   port = 5300
--
-- The profile prints, every second and at the end, what port 0 sent and port 1 received: what
-- port 1 receives per second is ilb's forwarding rate for new and established UDP flows. For the
-- full round trip (TCP handshakes, both rewrites checked, latency), use ilb-pktgen, which plays
-- the backends too.
--
-- Written against pktgen-dpdk's Lua API (pktgen.range.*, pktgen.portStats); this project's CI
-- does not run it, because pktgen-dpdk is not packaged for Debian 12.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

-- Edit these to match ilb.toml.
local ILB_MAC = "02:00:00:00:00:02" -- the MAC of ilb's port (ilbctl status shows it)
local VIP = "10.0.0.100"
local VPORT = 53
local CLIENT_FIRST = "10.128.0.1"
local CLIENT_LAST = "10.128.0.16" -- 16 client addresses ...
local CLIENT_PORT_FIRST = 1024
local CLIENT_PORT_LAST = 65535 -- ... x 64,512 ports: about 1 M flows
local FRAME_SIZE = 64
local RATE_PERCENT = 100 -- of port 0's line rate
local DURATION_S = 30

local TX = "0"
local RX = "1"

pktgen.stop("all")
pktgen.clear("all")

pktgen.set_proto(TX, "udp")
pktgen.range.dst_mac(TX, "start", ILB_MAC)
pktgen.range.dst_ip(TX, "start", VIP)
pktgen.range.dst_ip(TX, "inc", "0.0.0.0")
pktgen.range.dst_ip(TX, "min", VIP)
pktgen.range.dst_ip(TX, "max", VIP)
pktgen.range.dst_port(TX, "start", VPORT)
pktgen.range.dst_port(TX, "inc", 0)
pktgen.range.dst_port(TX, "min", VPORT)
pktgen.range.dst_port(TX, "max", VPORT)
pktgen.range.src_ip(TX, "start", CLIENT_FIRST)
pktgen.range.src_ip(TX, "inc", "0.0.0.1")
pktgen.range.src_ip(TX, "min", CLIENT_FIRST)
pktgen.range.src_ip(TX, "max", CLIENT_LAST)
pktgen.range.src_port(TX, "start", CLIENT_PORT_FIRST)
pktgen.range.src_port(TX, "inc", 1)
pktgen.range.src_port(TX, "min", CLIENT_PORT_FIRST)
pktgen.range.src_port(TX, "max", CLIENT_PORT_LAST)
pktgen.range.pkt_size(TX, "start", FRAME_SIZE)
pktgen.range.pkt_size(TX, "inc", 0)
pktgen.range.pkt_size(TX, "min", FRAME_SIZE)
pktgen.range.pkt_size(TX, "max", FRAME_SIZE)
pktgen.set_range(TX, "on")
pktgen.set(TX, "rate", RATE_PERCENT)

local function rates()
  local tx = pktgen.portStats(TX, "rate")[tonumber(TX)]
  local rx = pktgen.portStats(RX, "rate")[tonumber(RX)]
  return tx.pkts_tx, rx.pkts_rx
end

printf("ilb.lua: %s:%d, clients %s-%s ports %d-%d, %d-byte frames, %d %% of line rate, %d s\n",
  VIP, VPORT, CLIENT_FIRST, CLIENT_LAST, CLIENT_PORT_FIRST, CLIENT_PORT_LAST, FRAME_SIZE,
  RATE_PERCENT, DURATION_S)
pktgen.start(TX)
local sum_tx, sum_rx = 0, 0
for second = 1, DURATION_S do
  pktgen.delay(1000)
  local tx, rx = rates()
  sum_tx, sum_rx = sum_tx + tx, sum_rx + rx
  printf("%3d s  sent %10d pps  forwarded by ilb %10d pps\n", second, tx, rx)
end
pktgen.stop(TX)
printf("ilb.lua: mean sent %.0f pps, forwarded %.0f pps (%.3f of sent)\n", sum_tx / DURATION_S,
  sum_rx / DURATION_S, sum_tx > 0 and sum_rx / sum_tx or 0)
