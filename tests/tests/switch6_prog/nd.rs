//! Neighbour Discovery: the responder, duplicate address detection,
//! NS/NA spoofing.

use crate::fixture::*;

/// The advertisement the responder should send for `target` (owned by
/// `owner_mac`) to `asker` at `asker_mac`: built from scratch by the
/// tests' builder and checksum oracle.
fn expected_advert(
    owner_mac: Mac,
    target: Ipv6Addr,
    asker_mac: Mac,
    asker: Ipv6Addr,
    flags: u8,
) -> Vec<u8> {
    nd_frame(
        owner_mac,
        asker_mac,
        target,
        asker,
        ICMPV6_NEIGHBOUR_ADVERT,
        &nd_body(
            flags,
            target,
            &[lladdr_option(ND_OPT_TARGET_LLADDR, owner_mac)],
        ),
    )
}

#[test]
fn solicitations_for_known_addresses_are_answered_in_place() {
    in_private_netns(|| {
        let sw = Switch6::new("responder");
        let cases = [
            (
                A_IF,
                A_MAC,
                a(),
                b(),
                B_MAC,
                NA_SOLICITED | NA_OVERRIDE,
                "B's global",
            ),
            (
                A_IF,
                A_MAC,
                ll(A_MAC),
                ll(B_MAC),
                B_MAC,
                NA_SOLICITED | NA_OVERRIDE,
                "B's link-local",
            ),
            (
                A_IF,
                A_MAC,
                a(),
                gw(),
                GW_MAC,
                NA_ROUTER | NA_SOLICITED | NA_OVERRIDE,
                "the gateway's global",
            ),
            (
                A_IF,
                A_MAC,
                ll(A_MAC),
                ll(GW_MAC),
                GW_MAC,
                NA_ROUTER | NA_SOLICITED | NA_OVERRIDE,
                "the gateway's link-local",
            ),
            (
                GW_IF,
                GW_MAC,
                gw(),
                a(),
                A_MAC,
                NA_SOLICITED | NA_OVERRIDE,
                "A, asked by the host",
            ),
        ];
        let mut answered = 0;
        for (ingress, mac, src, target, owner_mac, flags, what) in cases {
            let ns = neighbour_solicit(mac, src, target);
            sw.xdp_passes_to_tc(ingress, &ns, what);
            let tc = sw.tc(ingress, &ns);
            assert_eq!(tc.verdict, TC_ACT_REDIRECT, "{what}: back out of its port");
            assert_eq!(tc.moved, [("port_rx", 1), ("nd_answered", 1)], "{what}");
            answered += 1;
            let na = &tc.out;
            // Field by field, then the whole frame against the builder's.
            assert_eq!(&na[0..6], &mac, "{what}: to the asker's MAC");
            assert_eq!(&na[6..12], &owner_mac, "{what}: from the owner's MAC");
            assert_eq!(&na[12..14], &ETH_P_IPV6.to_be_bytes());
            assert_eq!(&na[14..18], &[0x60, 0, 0, 0], "{what}: version 6");
            assert_eq!(&na[18..20], &[0, 32], "{what}: payload length");
            assert_eq!(
                (na[20], na[21]),
                (PROTO_ICMPV6, 255),
                "{what}: ICMPv6, hop limit 255"
            );
            assert_eq!(&na[22..38], &target.octets(), "{what}: from the target");
            assert_eq!(&na[38..54], &src.octets(), "{what}: to the asker");
            assert_eq!((na[54], na[55]), (ICMPV6_NEIGHBOUR_ADVERT, 0), "{what}");
            assert_eq!(&na[58..62], &[flags, 0, 0, 0], "{what}: flags");
            assert_eq!(&na[62..78], &target.octets(), "{what}: target");
            assert_eq!(&na[78..80], &[ND_OPT_TARGET_LLADDR, 1], "{what}: option");
            assert_eq!(&na[80..86], &owner_mac, "{what}: target link-layer address");
            assert!(upper_checksum_holds(&na[14..]), "{what}: ICMPv6 checksum");
            assert_eq!(
                *na,
                expected_advert(owner_mac, target, mac, src, flags),
                "{what}"
            );
        }
        assert_eq!(sw.loaded.counter(Counter::NdAnswered), answered);

        // Not answered, switched: an unknown target, the asker's own
        // address, the host asking for the gateway's (its own) address.
        for (ingress, mac, src, target, what) in [
            (A_IF, A_MAC, a(), global(99), "an unknown target"),
            (A_IF, A_MAC, a(), a(), "its own address"),
            (GW_IF, GW_MAC, gw(), gw(), "the gateway's own, by the host"),
        ] {
            let ns = neighbour_solicit(mac, src, target);
            sw.xdp_passes_to_tc(ingress, &ns, what);
            let tc = sw.tc(ingress, &ns);
            assert_eq!(tc.verdict, TC_ACT_SHOT, "{what}: flooded");
            assert_eq!(
                tc.moved,
                [("port_rx", 1), ("flooded", 1), ("flood_copies", 3)],
                "{what}"
            );
        }
        // Not of the shape answered in place (no source link-layer option,
        // an extension header): switched; XDP decides those itself.
        let bare = nd_frame(
            A_MAC,
            multicast_mac(solicited_node(b())),
            a(),
            solicited_node(b()),
            ICMPV6_NEIGHBOUR_SOLICIT,
            &nd_body(0, b(), &[]),
        );
        sw.flooded(A_IF, &bare, "no option");
        let mut ip = Ip6::new(a(), solicited_node(b()));
        ip.hop_limit = 255;
        ip.ext = vec![(NEXTHDR_DEST, options_header(1))];
        let m = icmpv6(
            a(),
            solicited_node(b()),
            ICMPV6_NEIGHBOUR_SOLICIT,
            0,
            &nd_body(0, b(), &[lladdr_option(ND_OPT_SOURCE_LLADDR, A_MAC)]),
        );
        let extended = eth6(
            multicast_mac(solicited_node(b())),
            A_MAC,
            &ipv6_full(&ip, PROTO_ICMPV6, &m),
        );
        sw.flooded(A_IF, &extended, "behind a destination options header");
        assert_eq!(sw.loaded.counter(Counter::NdAnswered), answered);
    });
}

#[test]
fn duplicate_address_detection_is_flooded_never_answered() {
    in_private_netns(|| {
        let sw = Switch6::new("dad");
        // A probing for its own address, and for B's (a real duplicate the
        // responder must not fake either way): switched as multicast.
        for (target, what) in [(a(), "its own"), (b(), "B's")] {
            sw.flooded(
                A_IF,
                &neighbour_solicit(A_MAC, Ipv6Addr::UNSPECIFIED, target),
                what,
            );
        }
        assert_eq!(sw.loaded.counter(Counter::NdAnswered), 0);
    });
}

#[test]
fn neighbour_discovery_cannot_claim_another_address_or_mac() {
    in_private_netns(|| {
        let sw = Switch6::new("nd-spoof");
        let own = lladdr_option(ND_OPT_TARGET_LLADDR, A_MAC);
        // Honest advertisements: flooded to all nodes.
        sw.flooded(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, std::slice::from_ref(&own)),
            "own global",
        );
        sw.flooded(
            A_IF,
            &neighbour_advert(A_MAC, ll(A_MAC), ll(A_MAC), NA_OVERRIDE, &[]),
            "own link-local, no option",
        );
        // Claiming B's or the gateway's address, from A's own source.
        for (target, what) in [
            (b(), "B's global"),
            (ll(B_MAC), "B's link-local"),
            (gw(), "the gateway's"),
        ] {
            sw.dropped(
                A_IF,
                &neighbour_advert(A_MAC, a(), target, NA_OVERRIDE, std::slice::from_ref(&own)),
                Counter::DropNdSpoof,
                &format!("NA for {what}"),
            );
        }
        // Its own address with another MAC in the option (first or later).
        let wrong = lladdr_option(ND_OPT_TARGET_LLADDR, B_MAC);
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, std::slice::from_ref(&wrong)),
            Counter::DropNdSpoof,
            "NA with B's MAC",
        );
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[own.clone(), wrong]),
            Counter::DropNdSpoof,
            "NA with B's MAC in a second option",
        );
        // A solicitation with another MAC in its source option.
        let ns = nd_frame(
            A_MAC,
            multicast_mac(solicited_node(b())),
            a(),
            solicited_node(b()),
            ICMPV6_NEIGHBOUR_SOLICIT,
            &nd_body(0, b(), &[lladdr_option(ND_OPT_SOURCE_LLADDR, GW_MAC)]),
        );
        sw.dropped(A_IF, &ns, Counter::DropNdSpoof, "NS with the gateway's MAC");
        // Options the check cannot follow: length 0, running past the
        // message, more than four.
        let zero = vec![ND_OPT_TARGET_LLADDR, 0, 0, 0, 0, 0, 0, 0];
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[zero]),
            Counter::DropNdSpoof,
            "option of length 0",
        );
        let long = vec![ND_OPT_TARGET_LLADDR, 2, 0, 0, 0, 0, 0, 0];
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[long]),
            Counter::DropNdSpoof,
            "option past the end",
        );
        let nonce = vec![14, 1, 1, 2, 3, 4, 5, 6];
        sw.dropped(
            A_IF,
            &neighbour_advert(
                A_MAC,
                a(),
                a(),
                NA_OVERRIDE,
                &vec![nonce.clone(); 4]
                    .into_iter()
                    .chain([own.clone()])
                    .collect::<Vec<_>>(),
            ),
            Counter::DropNdSpoof,
            "five options",
        );
        sw.flooded(
            A_IF,
            &neighbour_advert(
                A_MAC,
                a(),
                a(),
                NA_OVERRIDE,
                &vec![nonce; 3].into_iter().chain([own]).collect::<Vec<_>>(),
            ),
            "four options",
        );
        // An advertisement cut short before its target.
        let short = nd_frame(
            A_MAC,
            B_MAC,
            a(),
            b(),
            ICMPV6_NEIGHBOUR_ADVERT,
            &[0x20, 0, 0, 0, 0xfd, 0],
        );
        sw.dropped(A_IF, &short, Counter::DropTruncated, "NA of 10 bytes");
        // The host's advertisements are its own business.
        sw.flooded(
            GW_IF,
            &neighbour_advert(GW_MAC, gw(), a(), NA_OVERRIDE, &[]),
            "from the host",
        );
    });
}
