# Sourced by the bench guests (selection_guest.sh, kill_switch_guest.sh).
# flood_pps: packets per second of an unmarked ping flood of $COUNT packets
# from netns a to 10.0.1.2 (ping's own count and time).
flood_pps() {
	ip netns exec a ping -f -q -c "$COUNT" 10.0.1.2 2>&1 |
		awk '/packets transmitted/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "received,") r = $i; if ($i == "time") t = $(i+1) } }
		     END { sub("ms", "", t); if (t > 0) printf "%.1f", r / (t / 1000); else print 0 }'
}
