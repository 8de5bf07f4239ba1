using System.Buffers.Binary;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MoCo.Actors.Collectives.Nccl;

namespace MoCo.Actors.Tests.Nccl;

/// <summary>
/// The binding's structs and enums against nccl.h of NCCL 2.21.5 (src/nccl.h.in at tag v2.21.5-1). The expected
/// offsets are the C layout of <c>struct ncclConfig_v21700</c> on x86-64 (LP64: size_t and pointers 8 bytes and
/// 8-aligned, int 4): size 0, magic 8, version 12, blocking 16, cgaClusterSize 20, minCTAs 24, maxCTAs 28,
/// netName 32, splitShare 40, sizeof 48 (4 bytes of tail padding).
/// </summary>
public sealed class NcclLayoutSpec
{
    [Fact]
    public void Unique_id_must_be_exactly_128_bytes_in_managed_and_native_layout()
    {
        Assert.Equal(128, NcclUniqueId.Bytes);
        Assert.Equal(128, Unsafe.SizeOf<NcclUniqueId>());
        Assert.Equal(128, Marshal.SizeOf<NcclUniqueId>());
    }

    [Fact]
    public void Config_fields_must_follow_the_header_order_at_the_x86_64_offsets_of_nccl_2_21_5()
    {
        var expected = new (string Field, int Offset)[]
        {
            (nameof(NcclConfig.Size), 0),
            (nameof(NcclConfig.Magic), 8),
            (nameof(NcclConfig.Version), 12),
            (nameof(NcclConfig.Blocking), 16),
            (nameof(NcclConfig.CgaClusterSize), 20),
            (nameof(NcclConfig.MinCtas), 24),
            (nameof(NcclConfig.MaxCtas), 28),
            (nameof(NcclConfig.NetName), 32),
            (nameof(NcclConfig.SplitShare), 40),
        };

        var declared = typeof(NcclConfig).GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .Select(f => f.Name)
            .ToArray();
        Assert.Equal(expected.Select(e => e.Field), declared);
        foreach (var (field, offset) in expected)
        {
            Assert.Equal(offset, (int)Marshal.OffsetOf<NcclConfig>(field));
        }

        Assert.Equal(48, Unsafe.SizeOf<NcclConfig>());
        Assert.Equal(48, Marshal.SizeOf<NcclConfig>());
    }

    [Fact]
    public void Config_initializer_must_write_the_bytes_of_NCCL_CONFIG_INITIALIZER_and_non_blocking_must_change_only_blocking()
    {
        var initializer = NcclConfig.Initializer();
        var bytes = MemoryMarshal.AsBytes(new ReadOnlySpan<NcclConfig>(in initializer)).ToArray();

        Assert.Equal(48UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(0)));
        Assert.Equal(0xcafebeefU, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(22105U, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12)));
        foreach (var offset in new[] { 16, 20, 24, 28, 40 })
        {
            Assert.Equal(int.MinValue, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset)));
        }

        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(32)));

        var nonBlocking = NcclConfig.NonBlocking();
        var changed = MemoryMarshal.AsBytes(new ReadOnlySpan<NcclConfig>(in nonBlocking)).ToArray();
        Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(changed.AsSpan(16)));
        Assert.Equal(bytes[..16], changed[..16]);
        Assert.Equal(bytes[20..44], changed[20..44]);
    }

    [Theory]
    [InlineData(22105, 2, 21, 5)]
    [InlineData(21403, 2, 14, 3)]
    [InlineData(23007, 2, 30, 7)]
    [InlineData(2708, 2, 7, 8)]
    [InlineData(2406, 2, 4, 6)]
    public void Version_code_must_decode_both_encodings_of_NCCL_VERSION(int code, int major, int minor, int patch)
    {
        var version = NcclVersion.FromCode(code);

        Assert.Equal(new NcclVersion(major, minor, patch), version);
        Assert.Equal($"{major}.{minor}.{patch}", version.ToString());
    }

    [Fact]
    public void Minimum_version_must_be_2_14_and_compare_by_major_minor_patch()
    {
        Assert.Equal("2.14.0", NcclVersion.Minimum.ToString());
        Assert.True(new NcclVersion(2, 21, 5).IsAtLeast(NcclVersion.Minimum));
        Assert.True(new NcclVersion(2, 14, 0).IsAtLeast(NcclVersion.Minimum));
        Assert.False(new NcclVersion(2, 13, 4).IsAtLeast(NcclVersion.Minimum));
        Assert.False(new NcclVersion(2, 9, 9).IsAtLeast(new NcclVersion(2, 10, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => NcclVersion.FromCode(0));
    }

    [Fact]
    public void Enums_must_hold_the_values_of_nccl_h_in_a_C_int()
    {
        Assert.Equal(typeof(int), Enum.GetUnderlyingType(typeof(NcclResult)));
        Assert.Equal(typeof(int), Enum.GetUnderlyingType(typeof(NcclDataType)));
        Assert.Equal(typeof(int), Enum.GetUnderlyingType(typeof(NcclRedOp)));

        Assert.Equal(0, (int)NcclResult.Success);
        Assert.Equal(1, (int)NcclResult.UnhandledCudaError);
        Assert.Equal(2, (int)NcclResult.SystemError);
        Assert.Equal(3, (int)NcclResult.InternalError);
        Assert.Equal(4, (int)NcclResult.InvalidArgument);
        Assert.Equal(5, (int)NcclResult.InvalidUsage);
        Assert.Equal(6, (int)NcclResult.RemoteError);
        Assert.Equal(7, (int)NcclResult.InProgress);

        Assert.Equal(0, (int)NcclDataType.Int8);
        Assert.Equal(1, (int)NcclDataType.Uint8);
        Assert.Equal(2, (int)NcclDataType.Int32);
        Assert.Equal(3, (int)NcclDataType.Uint32);
        Assert.Equal(4, (int)NcclDataType.Int64);
        Assert.Equal(5, (int)NcclDataType.Uint64);
        Assert.Equal(6, (int)NcclDataType.Float16);
        Assert.Equal(7, (int)NcclDataType.Float32);
        Assert.Equal(8, (int)NcclDataType.Float64);
        Assert.Equal(9, (int)NcclDataType.Bfloat16);

        Assert.Equal(0, (int)NcclRedOp.Sum);
        Assert.Equal(4, (int)NcclRedOp.Avg);
    }
}
