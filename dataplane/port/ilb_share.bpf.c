// XDP program for a net_af_xdp port that the host's kernel shares (port key
// `share_with_kernel`): frames for ilb's addresses go to the port's AF_XDP socket of the queue
// they arrived on, everything else to the kernel.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>

// After linux/bpf.h, whose types they use.
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Filled by DPDK's net_af_xdp driver: one AF_XDP socket per queue.
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 1024);  // indexed by queue id
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

// ilb's IPv4 addresses (network order; the value is unused), kept by the dataplane's main lcore.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, __u8);
} ilb_addrs SEC(".maps");

SEC("xdp")
int ilb_share(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return XDP_PASS;
  __u32 target = 0;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end) return XDP_PASS;
    target = ip->daddr;
  } else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
    // Ethernet / IPv4 ARP (hardware type 1, protocol 0x0800, lengths 6 and 4): the target
    // protocol address is at byte 24 of the ARP header.
    __u8* arp = (void*)(eth + 1);
    if ((void*)(arp + 28) > end) return XDP_PASS;
    if (arp[0] != 0 || arp[1] != 1 || arp[2] != 0x08 || arp[3] != 0 || arp[4] != 6 || arp[5] != 4) {
      return XDP_PASS;
    }
    __builtin_memcpy(&target, arp + 24, 4);
  } else {
    return XDP_PASS;
  }
  if (bpf_map_lookup_elem(&ilb_addrs, &target) == 0) return XDP_PASS;
  return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";
