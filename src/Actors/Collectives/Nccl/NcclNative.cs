using System.Runtime.InteropServices;

namespace MoCo.Actors.Collectives.Nccl;

/// <summary>
/// P/Invoke declarations for libnccl, following nccl.h of NCCL 2.21.5 (each entry point used here exists from 2.14 on).
/// The library is found by <see cref="NativeLibraries"/> (libnccl.so.2, then libnccl.so); call nothing here unless
/// <see cref="NativeLibraries.Nccl"/> loaded. <c>ncclComm_t</c> and <c>cudaStream_t</c> are opaque pointers.
/// </summary>
internal static partial class NcclNative
{
    /// <summary>The name the <c>[LibraryImport]</c>s use; <see cref="NativeLibraries"/> maps it to the file that loaded.</summary>
    public const string Library = "nccl";

    static NcclNative()
    {
        NativeLibraries.Register();
    }

    /// <summary><c>ncclResult_t ncclGetVersion(int* version)</c>: <c>NCCL_VERSION_CODE</c> of the library (see <see cref="NcclVersion.FromCode"/>).</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclGetVersion(out int version);

    /// <summary><c>ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId)</c>: called once, by rank 0.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclGetUniqueId(out NcclUniqueId uniqueId);

    /// <summary>
    /// <c>ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config)</c>.
    /// The id goes by value (128 bytes, on the stack). With <c>blocking = 0</c> it returns <c>ncclInProgress</c> and
    /// a communicator handle at once; <c>ncclCommGetAsyncError</c> says when it is ready.
    /// </summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclCommInitRankConfig(out IntPtr comm, int nranks, NcclUniqueId commId, int rank, ref NcclConfig config);

    /// <summary><c>ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError)</c>: the communicator's state.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclCommGetAsyncError(IntPtr comm, out NcclResult asyncError);

    /// <summary><c>ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)</c>.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclAllReduce(IntPtr sendbuff, IntPtr recvbuff, nuint count, NcclDataType datatype, NcclRedOp op, IntPtr comm, IntPtr stream);

    /// <summary><c>ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)</c>: equal shares only.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclAllGather(IntPtr sendbuff, IntPtr recvbuff, nuint sendcount, NcclDataType datatype, IntPtr comm, IntPtr stream);

    /// <summary><c>ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)</c>: <c>sendbuff</c> is read on the root only.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclBroadcast(IntPtr sendbuff, IntPtr recvbuff, nuint count, NcclDataType datatype, int root, IntPtr comm, IntPtr stream);

    /// <summary><c>ncclResult_t ncclGroupStart(void)</c>: the calls up to <see cref="ncclGroupEnd"/> run as one operation.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclGroupStart();

    /// <summary><c>ncclResult_t ncclGroupEnd(void)</c>: launches the group; <c>ncclInProgress</c> on a non-blocking communicator.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclGroupEnd();

    /// <summary><c>ncclResult_t ncclCommFinalize(ncclComm_t comm)</c>: flushes the communicator; <c>ncclInProgress</c> until every rank is quiescent.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclCommFinalize(IntPtr comm);

    /// <summary><c>ncclResult_t ncclCommDestroy(ncclComm_t comm)</c>: frees a finalized communicator.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclCommDestroy(IntPtr comm);

    /// <summary><c>ncclResult_t ncclCommAbort(ncclComm_t comm)</c>: stops the communicator's kernels and frees it, whatever the peers do.</summary>
    [LibraryImport(Library)]
    public static partial NcclResult ncclCommAbort(IntPtr comm);

    /// <summary><c>const char* ncclGetErrorString(ncclResult_t result)</c>: a static string.</summary>
    [LibraryImport(Library)]
    public static partial IntPtr ncclGetErrorString(NcclResult result);

    /// <summary><c>const char* ncclGetLastError(ncclComm_t comm)</c>: the calling thread's last error message (the argument is unused).</summary>
    [LibraryImport(Library)]
    public static partial IntPtr ncclGetLastError(IntPtr comm);

    /// <summary>
    /// "ncclRemoteError: remote process exited or there was a network error (last error: ...)": the code's name, NCCL's
    /// string for it, and the thread's last error message when NCCL left one.
    /// </summary>
    /// <param name="result">The failed result.</param>
    /// <param name="comm">The communicator, or <see cref="IntPtr.Zero"/>.</param>
    public static string Describe(NcclResult result, IntPtr comm)
    {
        var text = Marshal.PtrToStringUTF8(ncclGetErrorString(result));
        var last = Marshal.PtrToStringUTF8(ncclGetLastError(comm));
        var name = Enum.IsDefined(result) ? $"nccl{result}" : $"ncclResult_t {(int)result}";
        return string.IsNullOrWhiteSpace(last) ? $"{name}: {text}" : $"{name}: {text} (last error: {last.Trim()})";
    }
}
