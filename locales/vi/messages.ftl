# Tin nhắn Herald gửi bệnh nhân, vi (tiếng Việt).
# Chỉ dùng các biến được phép (xem locales/en-US/messages.ftl và src/render/mod.rs).
# Không bao giờ nêu chẩn đoán, thuốc, xét nghiệm hay kết quả. Giữ nguyên từ khóa trả lời C, R, STOP, START, HELP.
# Draft translation: a qualified medical translator must review it before production (locales/README.md).

appointment-confirmation =
    .sms = { $practice }: cuộc hẹn của Quý vị với { $clinician } vào { $date } lúc { $time } đã được đặt. Trả lời C để xác nhận, R để đổi lịch, STOP để ngừng nhận tin.
    .subject = Cuộc hẹn của Quý vị đã được đặt
    .email =
        Cuộc hẹn của Quý vị với { $clinician } vào { $date } lúc { $time } tại { $location } đã được đặt.

        Để thay đổi, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Cuộc hẹn của Quý vị với { $clinician } vào { $date } lúc { $time } đã được đặt. Để thay đổi, vui lòng gọi { $phone }. Chào tạm biệt.

appointment-reminder =
    .sms = { $practice }: nhắc hẹn, Quý vị có hẹn với { $clinician } sau { $hours ->
       *[other] { $hours } giờ
    } nữa, vào { $date } lúc { $time }. Trả lời C để xác nhận, R để đổi lịch, STOP để ngừng nhận tin.
    .subject = Nhắc lịch hẹn
    .email =
        Xin nhắc Quý vị về cuộc hẹn với { $clinician } vào { $date } lúc { $time } tại { $location }.

        Để thay đổi, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice } gọi để nhắc Quý vị về cuộc hẹn với { $clinician } vào { $date } lúc { $time }. Để thay đổi, vui lòng gọi { $phone }. Chào tạm biệt.

appointment-rescheduled =
    .sms = { $practice }: cuộc hẹn của Quý vị với { $clinician } đã được dời sang { $date } lúc { $time }. Có thắc mắc? Gọi { $phone }. Trả lời STOP để ngừng nhận tin.
    .subject = Cuộc hẹn của Quý vị đã được dời
    .email =
        Cuộc hẹn của Quý vị với { $clinician } đã được dời sang { $date } lúc { $time } tại { $location }.

        Nếu có thắc mắc, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Cuộc hẹn của Quý vị với { $clinician } đã được dời sang { $date } lúc { $time }. Nếu có thắc mắc, vui lòng gọi { $phone }. Chào tạm biệt.

appointment-cancelled =
    .sms = { $practice }: cuộc hẹn của Quý vị vào { $date } lúc { $time } đã bị hủy. Để đặt hẹn lại, gọi { $phone } hoặc truy cập { $portal }. Trả lời STOP để ngừng nhận tin.
    .subject = Cuộc hẹn của Quý vị đã bị hủy
    .email =
        Cuộc hẹn của Quý vị vào { $date } lúc { $time } đã bị hủy.

        Để đặt hẹn lại, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Cuộc hẹn của Quý vị vào { $date } lúc { $time } đã bị hủy. Để đặt hẹn lại, vui lòng gọi { $phone }. Chào tạm biệt.

appointment-missed =
    .sms = { $practice }: chúng tôi đã không gặp được Quý vị vào { $date }. Để đặt hẹn mới, gọi { $phone } hoặc truy cập { $portal }. Trả lời STOP để ngừng nhận tin.
    .subject = Chúng tôi đã không gặp được Quý vị
    .email =
        Chúng tôi đã không gặp được Quý vị vào { $date }.

        Để đặt hẹn mới, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Chúng tôi đã không gặp được Quý vị vào { $date }. Để đặt hẹn mới, vui lòng gọi { $phone }. Chào tạm biệt.

medication-refill-reminder =
    .sms = { $practice }: có thể đã đến lúc Quý vị cần lấy thêm thuốc theo toa. Gọi { $phone } hoặc truy cập { $portal }. Trả lời STOP để ngừng nhận tin.
    .subject = Nhắc lấy thêm thuốc theo toa
    .email =
        Có thể đã đến lúc Quý vị cần lấy thêm thuốc theo toa.

        Vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Có thể đã đến lúc Quý vị cần lấy thêm thuốc theo toa. Vui lòng gọi { $phone }. Chào tạm biệt.

medication-ready-for-pickup =
    .sms = { $practice }: có một toa thuốc đã sẵn sàng để nhận. Có thắc mắc? Gọi { $phone }. Trả lời STOP để ngừng nhận tin.
    .subject = Đã sẵn sàng để nhận
    .email =
        Có một toa thuốc đã sẵn sàng để nhận.

        Nếu có thắc mắc, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Có một toa thuốc đã sẵn sàng để nhận. Nếu có thắc mắc, vui lòng gọi { $phone }. Chào tạm biệt.

consent-opt-in-confirmation =
    .sms = { $practice }: Quý vị sẽ nhận tin nhắn về lịch hẹn và toa thuốc, tối đa 3 tin mỗi tuần. Có thể áp dụng phí tin nhắn và dữ liệu. Trả lời HELP để được trợ giúp, STOP để ngừng nhận tin. Điều khoản: { $portal }
    .subject = Quý vị đã đăng ký nhận tin nhắn
    .email =
        Quý vị sẽ nhận tin nhắn về lịch hẹn và toa thuốc từ { $practice }, tối đa 3 tin mỗi tuần.

        Để được trợ giúp, vui lòng gọi { $phone }. Để ngừng nhận, hãy trả lời STOP hoặc truy cập { $portal }.
    .voice = Xin chào, đây là { $practice }. Quý vị sẽ nhận cuộc gọi về lịch hẹn và toa thuốc, tối đa 3 cuộc mỗi tuần. Để ngừng nhận, vui lòng gọi { $phone }. Chào tạm biệt.

consent-opt-out-confirmation =
    .sms = { $practice }: Quý vị đã hủy đăng ký và sẽ không nhận thêm tin nhắn nào. Trả lời START để đăng ký lại.
    .subject = Quý vị đã hủy đăng ký
    .email =
        Quý vị đã hủy đăng ký và sẽ không nhận thêm tin nhắn nào từ { $practice }.

        Để đăng ký lại, vui lòng gọi { $phone } hoặc truy cập { $portal }.
    .voice = Xin chào, đây là { $practice }. Quý vị sẽ không nhận thêm cuộc gọi nào. Để đăng ký lại, vui lòng gọi { $phone }. Chào tạm biệt.

consent-help =
    .sms = { $practice }: để được trợ giúp, gọi { $phone } hoặc truy cập { $portal }. Có thể áp dụng phí tin nhắn và dữ liệu. Trả lời STOP để ngừng nhận tin.
    .subject = Trợ giúp về tin nhắn
    .email =
        Để được trợ giúp về tin nhắn từ { $practice }, vui lòng gọi { $phone } hoặc truy cập { $portal }.

        Để ngừng nhận, hãy trả lời STOP.
    .voice = Xin chào, đây là { $practice }. Để được trợ giúp, vui lòng gọi { $phone }. Chào tạm biệt.

reply-confirmed =
    .sms = { $practice }: cảm ơn Quý vị, cuộc hẹn vào { $date } lúc { $time } đã được xác nhận. Trả lời STOP để ngừng nhận tin.
    .subject = Cuộc hẹn của Quý vị đã được xác nhận
    .email =
        Cảm ơn Quý vị, cuộc hẹn của Quý vị vào { $date } lúc { $time } đã được xác nhận.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Cảm ơn Quý vị, cuộc hẹn của Quý vị vào { $date } lúc { $time } đã được xác nhận. Chào tạm biệt.

reply-reschedule =
    .sms = { $practice }: để chọn thời gian mới, truy cập { $portal } hoặc gọi { $phone }. Trả lời STOP để ngừng nhận tin.
    .subject = Chọn thời gian mới
    .email =
        Để chọn thời gian mới cho cuộc hẹn của Quý vị, vui lòng truy cập { $portal } hoặc gọi { $phone }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Để chọn thời gian mới, vui lòng gọi { $phone }. Chào tạm biệt.

reply-cancel-requested =
    .sms = { $practice }: chúng tôi đã nhận được yêu cầu hủy cuộc hẹn vào { $date } của Quý vị. Nhân viên sẽ xác nhận. Có thắc mắc? Gọi { $phone }. Trả lời STOP để ngừng nhận tin.
    .subject = Chúng tôi đã nhận được yêu cầu hủy hẹn của Quý vị
    .email =
        Chúng tôi đã nhận được yêu cầu hủy cuộc hẹn vào { $date } của Quý vị. Nhân viên của chúng tôi sẽ xác nhận.

        Nếu có thắc mắc, vui lòng gọi { $phone }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Chúng tôi đã nhận được yêu cầu hủy cuộc hẹn vào { $date } của Quý vị. Nhân viên của chúng tôi sẽ xác nhận. Chào tạm biệt.

reply-received =
    .sms = { $practice }: cảm ơn Quý vị, nhân viên của chúng tôi sẽ đọc tin nhắn. Nếu có việc khẩn, gọi { $phone }. Trả lời STOP để ngừng nhận tin.
    .subject = Chúng tôi đã nhận được tin nhắn của Quý vị
    .email =
        Cảm ơn Quý vị, nhân viên của chúng tôi sẽ đọc tin nhắn của Quý vị. Nếu có việc khẩn, vui lòng gọi { $phone }.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Cảm ơn Quý vị, nhân viên của chúng tôi sẽ đọc tin nhắn của Quý vị. Nếu có việc khẩn, vui lòng gọi { $phone }. Chào tạm biệt.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: mã của Quý vị là { $code }. Vui lòng nhập mã trên trang tùy chọn trong vòng 10 phút. Nếu Quý vị không yêu cầu, xin bỏ qua tin nhắn này.
    .subject = Mã xác nhận của Quý vị
    .email =
        Mã của Quý vị là { $code }. Vui lòng nhập mã trên trang tùy chọn trong vòng 10 phút.

        Nếu Quý vị không yêu cầu, xin bỏ qua tin nhắn này.

        { $practice }
    .voice = Xin chào, đây là { $practice }. Mã của Quý vị là { $code }. Xin nhắc lại, { $code }. Chào tạm biệt.
