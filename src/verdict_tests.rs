use super::*;
use crate::event::{META_DEV, META_NETNS};

fn ev(netns: u32, dev: &str) -> Event {
    let mut m = Meta {
        known: META_NETNS | META_DEV,
        netns,
        ..Meta::default()
    };
    m.ifname[..dev.len()].copy_from_slice(dev.as_bytes());
    Event {
        packet_id: 1,
        meta: Some(Box::new(m)),
        ..Event::default()
    }
}

fn run(steps: &[(&str, Option<&str>, u32, &str)], ended: bool) -> Verdict {
    let mut j = Journey::default();
    for (f, reason, netns, dev) in steps {
        j.see(&ev(*netns, dev), f, reason.map(str::to_string));
    }
    j.verdict(ended)
}

#[test]
fn a_drop_names_function_reason_and_place() {
    let v = run(
        &[
            ("ip_rcv", None, 1, "va"),
            ("nf_hook_slow", None, 2, "vb"),
            ("kfree_skb_reason", Some("NETFILTER_DROP"), 2, "vb"),
            ("kfree_skbmem", None, 2, "vb"),
        ],
        true,
    );
    assert_eq!(v.kind, Kind::Dropped);
    assert_eq!(v.function, "kfree_skb_reason");
    assert_eq!(v.event, 2);
    assert_eq!(
        v.describe(),
        "dropped at kfree_skb_reason (NETFILTER_DROP) in netns 2 dev vb"
    );
}

#[test]
fn consumed_reason_is_not_a_drop() {
    let v = run(
        &[
            ("icmp_rcv", None, 2, "vb"),
            ("kfree_skb", Some("SKB_CONSUMED"), 2, "vb"),
        ],
        true,
    );
    assert_eq!((v.kind, v.function.as_str()), (Kind::Consumed, "icmp_rcv"));
    // Only frees traced (the tracepoint backend): the last of them.
    let v = run(&[("consume_skb", None, 2, "vb")], true);
    assert_eq!(
        (v.kind, v.function.as_str()),
        (Kind::Consumed, "consume_skb")
    );
}

#[test]
fn veth_transmit_is_not_the_end_but_a_last_transmit_is() {
    let through_veth = [
        ("dev_hard_start_xmit", None, 1, "va"),
        ("veth_xmit", None, 1, "va"),
        ("netif_receive_skb", None, 2, "vb"),
        ("icmp_rcv", None, 2, "vb"),
        ("consume_skb", None, 2, "vb"),
    ];
    assert_eq!(run(&through_veth, true).kind, Kind::Consumed);
    let out = [
        ("dev_hard_start_xmit", None, 1, "eth0"),
        ("consume_skb", None, 1, "eth0"),
    ];
    let v = run(&out, true);
    assert_eq!(
        (v.kind, v.ifname.as_deref()),
        (Kind::Transmitted, Some("eth0"))
    );
}

#[test]
fn socket_delivery_and_in_flight() {
    let v = run(
        &[
            ("ip_rcv", None, 1, "va"),
            ("ping_queue_rcv_skb", None, 1, "va"),
            ("consume_skb", None, 1, "va"),
        ],
        true,
    );
    assert_eq!(v.kind, Kind::Delivered);
    // A raw socket's copy delivered, the original dropped by ping_rcv.
    let v = run(
        &[
            ("ip_local_deliver", None, 1, "va"),
            ("__sock_queue_rcv_skb", None, 1, "va"),
            ("icmp_rcv", None, 1, "va"),
            ("kfree_skb_reason", Some("NO_SOCKET"), 1, "va"),
        ],
        false,
    );
    assert_eq!(
        (v.kind, v.function.as_str()),
        (Kind::Delivered, "__sock_queue_rcv_skb")
    );
    let v = run(&[("ip_rcv", None, 1, "va")], false);
    assert_eq!((v.kind, v.function.as_str()), (Kind::InFlight, "ip_rcv"));
}

#[test]
fn summary_counts_verdicts_and_top_drops() {
    let mut js = Journeys::default();
    for id in 1..=3u64 {
        let mut e = ev(2, "vb");
        e.packet_id = id;
        js.see(&e, "ip_rcv", None, false);
        let reason = (id < 3).then(|| "NETFILTER_DROP".to_string());
        let v = js.see(&e, "kfree_skb_reason", reason, id != 2);
        assert_eq!(v.is_some(), id != 2);
    }
    let left = js.finish();
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].1.kind,
        Kind::Dropped,
        "a drop seen is a drop even unended"
    );
    let s = js.summary();
    assert_eq!(s.packets, 3);
    assert_eq!(s.verdicts["dropped"], 2);
    assert_eq!(
        s.top_drops(),
        [(
            "kfree_skb_reason".to_string(),
            "NETFILTER_DROP".to_string(),
            2
        )]
    );
    assert_eq!(s.lines()[0], "3 packets: 1 consumed, 2 dropped");
}

#[test]
fn returns_after_the_end_start_no_packet() {
    let mut js = Journeys::default();
    let e = ev(1, "va");
    assert!(js.see(&e, "consume_skb", None, true).is_some());
    let ret = Event {
        is_return: 1,
        ..e.clone()
    };
    assert!(js.see(&ret, "icmp_rcv", None, false).is_none());
    assert!(js.finish().is_empty());
    assert_eq!(js.summary().packets, 1);
}
