namespace MoCo.Actors.Collectives.Nccl;

/// <summary>An NCCL release, as <c>ncclGetVersion</c> reports it.</summary>
/// <param name="Major">The major version (2).</param>
/// <param name="Minor">The minor version.</param>
/// <param name="Patch">The patch level.</param>
public readonly record struct NcclVersion(int Major, int Minor, int Patch) : IComparable<NcclVersion>
{
    /// <summary>
    /// The oldest NCCL this binding runs on: 2.14 brought non-blocking communicators (<c>ncclConfig_t.blocking</c>,
    /// <c>ncclInProgress</c>, <c>ncclCommInitRankConfig</c>, <c>ncclCommFinalize</c>), which the timeouts need.
    /// </summary>
    public static NcclVersion Minimum { get; } = new(2, 14, 0);

    /// <summary>
    /// Decodes <c>NCCL_VERSION_CODE</c>: <c>X*1000 + Y*100 + Z</c> up to 2.8, <c>X*10000 + Y*100 + Z</c> from 2.9 on
    /// (22105 is 2.21.5; 2708 is 2.7.8).
    /// </summary>
    /// <param name="code">The code <c>ncclGetVersion</c> wrote.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="code"/> is not positive.</exception>
    public static NcclVersion FromCode(int code)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(code);
        return code >= 10000
            ? new NcclVersion(code / 10000, code % 10000 / 100, code % 100)
            : new NcclVersion(code / 1000, code % 1000 / 100, code % 100);
    }

    /// <inheritdoc />
    public int CompareTo(NcclVersion other)
    {
        return (Major, Minor, Patch).CompareTo((other.Major, other.Minor, other.Patch));
    }

    /// <summary>Whether this release is <paramref name="other"/> or later.</summary>
    /// <param name="other">The release to compare with.</param>
    public bool IsAtLeast(NcclVersion other)
    {
        return CompareTo(other) >= 0;
    }

    /// <summary>"2.21.5".</summary>
    public override string ToString()
    {
        return $"{Major}.{Minor}.{Patch}";
    }
}
