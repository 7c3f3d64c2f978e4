#!/usr/bin/perl
# dns-server.pl PORT - a tiny authoritative DNS server on 127.0.0.1:PORT (UDP) for the tests
# of name resolution (core Perl only). Prints "bound PORT" once listening. Answers:
#   good.test       A 127.0.0.1, AAAA ::1
#   v4only.test     A 127.0.0.1 (AAAA: no data)
#   v6only.test     AAAA ::1 (A: no data)
#   blackhole*.test never answered (the regression: a silent name must delay only itself)
#   anything else   NXDOMAIN
# Exits after TP_DNS_MAX_LIFETIME seconds (default 600) so a killed test leaves nothing behind.
use strict; use warnings; use Socket; use IO::Select; use IO::Handle;
my $port = shift or die "usage: $0 PORT\n";
my $deadline = time + ($ENV{TP_DNS_MAX_LIFETIME} || 600);
socket(my $s, PF_INET, SOCK_DGRAM, getprotobyname("udp")) or die "socket: $!";
bind($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die "bind 127.0.0.1:$port: $!\n";
print "bound $port\n"; STDOUT->flush;
my %a = ("good.test" => "127.0.0.1", "v4only.test" => "127.0.0.1");
my %aaaa = ("good.test" => 1, "v6only.test" => 1);
my $sel = IO::Select->new($s);
while (time < $deadline) {
  next unless $sel->can_read(1);
  my $peer = recv($s, my $q, 512, 0) or next;
  next if length($q) < 17;
  my ($id, $flags, $qd) = unpack("n n n", $q);
  next if $qd != 1;
  my ($off, @labels) = (12);
  while ($off < length($q)) {
    my $len = ord(substr($q, $off, 1)); $off++;
    last if $len == 0;
    push @labels, lc substr($q, $off, $len); $off += $len;
  }
  next if $off + 4 > length($q);
  my ($qtype) = unpack("n", substr($q, $off, 2));
  my $question = substr($q, 12, $off + 4 - 12);
  my $name = join(".", @labels);
  next if $name =~ /^blackhole[^.]*\.test$/;
  my @answers;
  if ($qtype == 1 && exists $a{$name}) {
    push @answers, pack("n n n N n", 0xC00C, 1, 1, 60, 4) . inet_aton($a{$name});
  } elsif ($qtype == 28 && exists $aaaa{$name}) {
    push @answers, pack("n n n N n", 0xC00C, 28, 1, 60, 16) . ("\0" x 15) . "\1";
  }
  my $known = exists $a{$name} || exists $aaaa{$name};
  my $rcode = $known ? 0 : 3;
  my $reply = pack("n n n n n n", $id, 0x8400 | ($flags & 0x0100) | 0x0080 | $rcode, 1,
    scalar(@answers), 0, 0) . $question . join("", @answers);
  send($s, $reply, 0, $peer);
}
