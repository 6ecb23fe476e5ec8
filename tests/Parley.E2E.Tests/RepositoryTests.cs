using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using Parley.Server;

namespace Parley.E2E.Tests;

/// <summary>
/// The repository stands alone and says what it is: no tracked file points outside it, every protocol note a comment
/// cites exists in docs/compatibility.md, and the build carries the release's version and commit.
/// </summary>
public sealed partial class RepositoryTests
{
    [Fact]
    public void NoTrackedFile_RefersOutsideTheRepository()
    {
        // Built from pieces, so that this file does not name what it forbids.
        string[] outside = [".." + "/shared", "shared" + "/spec", "shared" + "/seed", "/" + "work/"];
        var found = new List<string>();
        foreach (var (path, text) in Repository.TrackedTextFiles())
        {
            foreach (var needle in outside.Where(n => text.Contains(n, StringComparison.Ordinal))) found.Add($"{path}: {needle}");
            // Numbered sections of the outside reference the code once cited ("spec", a section sign, a number): cite
            // docs/compatibility.md §<section> instead.
            foreach (Match m in NumberedSpec().Matches(text)) found.Add($"{path}: {m.Value}");
        }
        Assert.Empty(found);
    }

    [Fact]
    public void EveryProtocolNoteCited_IsASectionOfTheCompatibilityDocument()
    {
        var doc = File.ReadAllText(Path.Combine(Repository.Root, "docs", "compatibility.md"));
        var sections = SectionHeading().Matches(doc).Select(m => m.Groups[1].Value.Trim()).ToList();
        var anchors = sections.Select(Anchor).ToHashSet();
        var missing = new List<string>();
        foreach (var (path, text) in Repository.TrackedTextFiles())
        {
            // "docs/compatibility.md §Guest errors, 4006": the words after § begin with a section's heading.
            foreach (Match m in SectionCitation().Matches(text))
                if (!sections.Any(s => m.Groups[1].Value.StartsWith(s, StringComparison.Ordinal))) missing.Add($"{path}: §{m.Groups[1].Value}");
            foreach (Match m in SectionLink().Matches(text))
                if (!anchors.Contains(m.Groups[1].Value)) missing.Add($"{path}: #{m.Groups[1].Value}");
        }
        Assert.True(sections.Count > 20, $"docs/compatibility.md has {sections.Count} headings: its protocol notes are gone");
        Assert.Empty(missing);
    }

    [Fact]
    public void TheBuild_CarriesTheVersionOfTheChangelogAndTheCommit()
    {
        var informational = typeof(ParleyOptions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        var m = ReleaseVersion().Match(informational);
        Assert.True(m.Success, $"InformationalVersion '{informational}' is not <semantic version>+<commit>");
        var changelog = File.ReadAllText(Path.Combine(Repository.Root, "CHANGELOG.md"));
        Assert.Contains($"## [{m.Groups[1].Value}]", changelog);
        Assert.True(File.Exists(Path.Combine(Repository.Root, "LICENSE")));
    }

    /// <summary>GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.</summary>
    static string Anchor(string heading) => Regex.Replace(heading.ToLowerInvariant(), "[^a-z0-9 -]", "").Replace(' ', '-');

    [GeneratedRegex(@"\bspec §\d", RegexOptions.IgnoreCase)]
    private static partial Regex NumberedSpec();

    [GeneratedRegex(@"^#{2,3} (.+)$", RegexOptions.Multiline)]
    private static partial Regex SectionHeading();

    [GeneratedRegex(@"§([A-Z][A-Za-z -]*)")]
    private static partial Regex SectionCitation();

    [GeneratedRegex(@"compatibility\.md#([a-z0-9-]+)")]
    private static partial Regex SectionLink();

    [GeneratedRegex(@"^(\d+\.\d+\.\d+)\+[0-9a-f]{40}$")]
    private static partial Regex ReleaseVersion();
}

/// <summary>The repository the tests were built from: its root, and the text of the files git tracks.</summary>
static class Repository
{
    public static string Root { get; } = FindRoot();

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Parley.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Parley.slnx above {AppContext.BaseDirectory}");
    }

    /// <summary>Every tracked file that reads as text (lockfiles and the licence are not ours to word).</summary>
    public static IEnumerable<(string Path, string Text)> TrackedTextFiles()
    {
        var git = Process.Start(new ProcessStartInfo("git", ["-C", Root, "ls-files", "-z"]) { RedirectStandardOutput = true })!;
        var paths = git.StandardOutput.ReadToEnd().Split('\0', StringSplitOptions.RemoveEmptyEntries);
        git.WaitForExit();
        Assert.Equal(0, git.ExitCode);
        foreach (var path in paths)
        {
            if (path.EndsWith("package-lock.json", StringComparison.Ordinal) || path == "LICENSE") continue;
            var full = Path.Combine(Root, path);
            if (!File.Exists(full)) continue;   // deleted in the work tree, not yet committed
            var text = File.ReadAllText(full);
            if (!text.Contains('\0')) yield return (path, text);
        }
    }
}
