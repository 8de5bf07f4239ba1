using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// <c>ncclConfig_t</c>, laid out as <c>struct ncclConfig_v21700</c> in nccl.h of NCCL 2.21.5 (src/nccl.h.in at tag
/// v2.21.5-1): <c>size_t size; unsigned int magic; unsigned int version; int blocking; int cgaClusterSize; int minCTAs;
/// int maxCTAs; const char* netName; int splitShare;</c>. On x86-64 (LP64) that is offsets 0, 8, 12, 16, 20, 24, 28,
/// 32, 40 and 48 bytes in all (4 bytes of tail padding).
/// </summary>
/// <remarks>
/// <para>
/// Why this layout: it is the one NCCL kept from 2.17 to 2.26, the NCCL of the CUDA 12 PyTorch and libtorch builds of
/// those years, and it holds the one field we set (<see cref="Blocking"/>). Later versions only append fields
/// (2.27: trafficClass, commName, collnetEnable, CTAPolicy, shrinkShare, nvlsCTAs; 2.28 to 2.30 more).
/// </para>
/// <para>
/// Why omitting those is safe: <c>parseCommConfig</c> (src/init.cc) starts from its own <c>NCCL_CONFIG_INITIALIZER</c>
/// and copies only <c>min(config-&gt;size, sizeof(ncclConfig_t))</c> bytes of ours over it, so every field past our
/// <see cref="Size"/> keeps its "undefined" value and gets NCCL's default. It also resets the fields introduced after
/// <see cref="Version"/> (checks like <c>version &lt; NCCL_VERSION(2, 27, 0)</c>), and an older library (2.14 to 2.16,
/// whose struct is shorter) clamps the copy to its own size. So the struct is read correctly by every NCCL from 2.14 on.
/// </para>
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal struct NcclConfig
{
    /// <summary><c>NCCL_API_MAGIC</c>: NCCL refuses a config without it (not made by the initializer).</summary>
    public const uint ApiMagic = 0xcafebeef;

    /// <summary><c>NCCL_CONFIG_UNDEF_INT</c> (<c>INT_MIN</c>): "use NCCL's default".</summary>
    public const int Undefined = int.MinValue;

    /// <summary><c>NCCL_VERSION(2, 21, 5)</c>: the header version whose layout this struct follows.</summary>
    public const uint LayoutVersion = 2 * 10000 + 21 * 100 + 5;

    /// <summary><c>size</c>: <c>sizeof(ncclConfig_t)</c> as the caller knows it.</summary>
    public nuint Size;

    /// <summary><c>magic</c>: <see cref="ApiMagic"/>.</summary>
    public uint Magic;

    /// <summary><c>version</c>: the <c>NCCL_VERSION_CODE</c> of the header the caller was written against.</summary>
    public uint Version;

    /// <summary><c>blocking</c>: 0 makes every call return at once, <c>ncclInProgress</c> until done (we poll).</summary>
    public int Blocking;

    /// <summary><c>cgaClusterSize</c>.</summary>
    public int CgaClusterSize;

    /// <summary><c>minCTAs</c>.</summary>
    public int MinCtas;

    /// <summary><c>maxCTAs</c>.</summary>
    public int MaxCtas;

    /// <summary><c>netName</c>: a C string, or null for NCCL's choice.</summary>
    public IntPtr NetName;

    /// <summary><c>splitShare</c>.</summary>
    public int SplitShare;

    /// <summary><c>NCCL_CONFIG_INITIALIZER</c> of NCCL 2.21.5: every attribute undefined.</summary>
    public static NcclConfig Initializer()
    {
        return new NcclConfig
        {
            Size = (nuint)Unsafe.SizeOf<NcclConfig>(),
            Magic = ApiMagic,
            Version = LayoutVersion,
            Blocking = Undefined,
            CgaClusterSize = Undefined,
            MinCtas = Undefined,
            MaxCtas = Undefined,
            NetName = IntPtr.Zero,
            SplitShare = Undefined,
        };
    }

    /// <summary>The initializer with <c>blocking = 0</c>: init, collectives and finalize return <c>ncclInProgress</c> and are polled.</summary>
    public static NcclConfig NonBlocking()
    {
        var config = Initializer();
        config.Blocking = 0;
        return config;
    }
}
