#nullable enable
// MSBuild inline task (RoslynCodeTaskFactory, compiled against netstandard2.0): lets TorchSharp 0.107 load on systems whose libstdc++
// predates GCC 13 (Debian 12 stops at GLIBCXX_3.4.30).
//
// libLibTorchSharp.so lists GLIBCXX_3.4.32 in its version-needed section (.gnu.version_r) only for
// std::ios_base_library_init, a symbol it never binds. The dynamic loader refuses the library when a
// required version is missing, unless the requirement carries VER_FLG_WEAK. We set that one flag on that
// one requirement, in a single patched copy under artifacts/, and only when the system libstdc++ lacks it.
using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class MarkGlibcxxVersionWeak : Task
{
    /// <summary>The copies of libLibTorchSharp.so in an output or publish folder; patched in place.</summary>
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    /// <summary>The version the system may lack, e.g. GLIBCXX_3.4.32.</summary>
    [Required] public string Version { get; set; } = "";
    /// <summary>A file whose existence means the notice was already printed for this clone.</summary>
    [Required] public string NoticeMarker { get; set; } = "";

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    public override bool Execute()
    {
        var libstdcxx = FindSystemLibStdCxx();
        if (libstdcxx == null)
        {
            Log.LogMessage(MessageImportance.Low, "MoCo.Actors: no system libstdc++ found; libLibTorchSharp.so left as shipped.");
            return true;
        }
        if (Contains(File.ReadAllBytes(libstdcxx), Encoding.ASCII.GetBytes(Version + "\0")))
        {
            return true; // the system has the version: TorchSharp's file stays as shipped
        }
        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            var bytes = File.ReadAllBytes(path);
            int patched = MarkWeak(bytes, Version);
            if (patched < 0)
            {
                Log.LogError("MoCo.Actors: {0} is not a 64-bit little-endian ELF file; cannot check its {1} requirement.", path, Version);
                return false;
            }
            if (patched == 0)
            {
                continue; // already weak, or this TorchSharp no longer asks for the version
            }
            // Keep size and time stamp, so that incremental builds see the file as up to date.
            var stamp = File.GetLastWriteTimeUtc(path);
            var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.WriteAllBytes(tmp, bytes);
            File.SetLastWriteTimeUtc(tmp, stamp);
            File.Copy(tmp, path, true);
            File.SetLastWriteTimeUtc(path, stamp);
            File.Delete(tmp);
            bool first = !File.Exists(NoticeMarker);
            if (first)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(NoticeMarker)!);
                File.WriteAllText(NoticeMarker, libstdcxx + " lacks " + Version + "\n");
            }
            Log.LogMessage(first ? MessageImportance.High : MessageImportance.Low,
                "MoCo.Actors: the system libstdc++ ({0}) lacks {1}, which TorchSharp's libLibTorchSharp.so asks for but never uses; " +
                "marked that one requirement weak (VER_FLG_WEAK) in the build output so that TorchSharp loads ({2}). This notice is shown once.",
                libstdcxx, Version, Path.GetFullPath(path));
        }
        return true;
    }

    /// <summary>Sets VER_FLG_WEAK on every vernaux entry named <paramref name="version"/>; returns how many, or -1 if not ELF64 LE.</summary>
    public static int MarkWeak(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2 || elf[5] != 1)
        {
            return -1;
        }
        ulong shoff = BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        int count = 0;
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            int offset = checked((int)BitConverter.ToUInt64(elf, sh + 0x18));
            int link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
            int entries = (int)BitConverter.ToUInt32(elf, sh + 0x2C);
            int strtab = checked((int)BitConverter.ToUInt64(elf, checked((int)shoff + link * shentsize) + 0x18));
            int vn = offset;
            for (int e = 0; e < entries; e++)
            {
                int cnt = BitConverter.ToUInt16(elf, vn + 2);
                int aux = vn + (int)BitConverter.ToUInt32(elf, vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    int name = strtab + (int)BitConverter.ToUInt32(elf, aux + 8);
                    if (CStringEquals(elf, name, version))
                    {
                        ushort flags = BitConverter.ToUInt16(elf, aux + 4);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            flags |= VerFlgWeak;
                            elf[aux + 4] = (byte)(flags & 0xff);
                            elf[aux + 5] = (byte)(flags >> 8);
                            count++;
                        }
                    }
                    uint nextAux = BitConverter.ToUInt32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                uint next = BitConverter.ToUInt32(elf, vn + 12);
                if (next == 0) break;
                vn += (int)next;
            }
        }
        return count;
    }

    static bool CStringEquals(byte[] data, int at, string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (at + i >= data.Length || data[at + i] != (byte)s[i]) return false;
        }
        return at + s.Length < data.Length && data[at + s.Length] == 0;
    }

    static bool Contains(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return true;
        }
        return false;
    }

    static string? FindSystemLibStdCxx()
    {
        try
        {
            var psi = new ProcessStartInfo("/sbin/ldconfig", "-p") { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi);
            if (p != null)
            {
                string output = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                foreach (var line in output.Split('\n'))
                {
                    if (line.Contains("libstdc++.so.6 ") && line.Contains("x86-64"))
                    {
                        var path = line.Substring(line.IndexOf("=>", StringComparison.Ordinal) + 2).Trim();
                        if (File.Exists(path)) return path;
                    }
                }
            }
        }
        catch (Exception)
        {
            // fall through to the usual places
        }
        foreach (var path in new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6" })
        {
            if (File.Exists(path)) return path;
        }
        return null;
    }
}
