using System.Globalization;

namespace Parley.Cluster.Tests.Engines;

/// <summary>
/// Which process holds one end of a loopback TCP connection, from /proc: the connection's inode from /proc/net/tcp,
/// then the process whose descriptors include that socket. A webhook receiver learns this way which node is sending it
/// a request (no header names the node) while the connection is open.
/// </summary>
public static class SocketOwner
{
    /// <summary>The id among <paramref name="candidates"/> of the process whose socket has local port <paramref name="localPort"/>; null if none.</summary>
    public static int? Find(int localPort, IEnumerable<int> candidates)
    {
        var inodes = Inodes(localPort);
        if (inodes.Count == 0) return null;
        foreach (var pid in candidates)
        {
            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
                {
                    var target = new FileInfo(fd).LinkTarget;   // "socket:[12345]"
                    if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)
                        && inodes.Contains(target["socket:[".Length..^1]))
                        return pid;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* gone, or not ours to read */ }
        }
        return null;
    }

    /// <summary>The inodes of the sockets whose local address has this port (IPv4 and IPv6 tables).</summary>
    static HashSet<string> Inodes(int localPort)
    {
        var found = new HashSet<string>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode"
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10) continue;
                var local = fields[1];
                var port = int.Parse(local[(local.LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (port == localPort && fields[9] != "0") found.Add(fields[9]);
            }
        }
        return found;
    }
}
