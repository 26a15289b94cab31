use crate::{Control, ControlPacket, Diag, PacketError, State, PACKET_LEN};

fn sample() -> Control {
    Control {
        diag: Diag::NeighborSignaledDown,
        state: State::Init,
        poll: true,
        final_bit: false,
        detect_mult: 3,
        my_discriminator: 0x0102_0304,
        your_discriminator: 0xa0b0_c0d0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
    }
}

#[test]
fn encodes_the_rfc_layout_and_reads_it_back() {
    let c = sample();
    let b = c.encode();
    assert_eq!(b[0], 0x23, "version 1, diagnostic 3");
    assert_eq!(b[1], 0xa0, "state Init, poll");
    assert_eq!(&b[2..4], &[3, 24]);
    assert_eq!(&b[4..8], &[1, 2, 3, 4]);
    assert_eq!(&b[12..16], &1_000_000u32.to_be_bytes());
    let p = ControlPacket::new_checked(&b[..]).expect("valid");
    assert_eq!(p.to_control(), c);
    assert!(!p.authenticated() && !p.demand() && !p.control_plane_independent());
    assert_eq!(p.len(), PACKET_LEN);
    for d in 0..32 {
        assert_eq!(Diag::from_code(d).code(), d);
    }
}

#[test]
fn rejects_what_rfc_5880_discards() {
    let good = sample().encode();
    let with = |i: usize, v: u8| {
        let mut b = good.to_vec();
        b[i] = v;
        b
    };
    let cases = [
        (good[..23].to_vec(), PacketError::Truncated(23)),
        (with(0, 0x43), PacketError::Version(2)),
        (
            with(3, 23),
            PacketError::Length {
                field: 23,
                got: 24,
                min: 24,
            },
        ),
        (
            with(3, 25),
            PacketError::Length {
                field: 25,
                got: 24,
                min: 24,
            },
        ),
        (
            with(1, 0x84),
            PacketError::Length {
                field: 24,
                got: 24,
                min: 26,
            },
        ),
        (with(2, 0), PacketError::DetectMult),
        (with(1, 0x81), PacketError::Multipoint),
        (
            {
                let mut b = good.to_vec();
                b[4..8].fill(0);
                b
            },
            PacketError::MyDiscriminator,
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(ControlPacket::new_checked(&bytes[..]).err(), Some(want));
    }
    // Trailing bytes past the length field are ignored.
    let mut long = good.to_vec();
    long.extend([0; 8]);
    assert!(ControlPacket::new_checked(&long[..]).is_ok());
}
