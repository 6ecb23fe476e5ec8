namespace Parley.Storage.Sqlite;

/// <summary>
/// The database holds the token-signing key, client secret hashes and integration secrets: its folder is made 0700 and
/// its files (db, -wal, -shm) 0600, on creation and again at every start (fixing what an older version left readable).
/// </summary>
static class OwnerOnly
{
    const UnixFileMode Folder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    const UnixFileMode File = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static void PrepareDatabase(string path)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
            return;
        }
        if (!Directory.Exists(folder)) Directory.CreateDirectory(folder, Folder);
        else if (!new DirectoryInfo(folder).UnixFileMode.HasFlag(UnixFileMode.StickyBit))
        {
            // A sticky folder is a shared one such as /tmp: never close that to its other users; its files are still 0600.
            try { new DirectoryInfo(folder).UnixFileMode = Folder; }
            catch (UnauthorizedAccessException) { }   // another user's folder that we may write to: the files are still ours
        }
        // Create the database file 0600 before SQLite opens it: SQLite gives the -wal and -shm it creates the same mode.
        if (!System.IO.File.Exists(path))
            new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = File }).Dispose();
        RestrictDatabaseFiles(path);
    }

    public static void RestrictDatabaseFiles(string path)
    {
        if (OperatingSystem.IsWindows()) return;
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            if (System.IO.File.Exists(file) && System.IO.File.GetUnixFileMode(file) != File)
                System.IO.File.SetUnixFileMode(file, File);
    }
}
